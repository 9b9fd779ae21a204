// Helpers shared by gluonbert's kernels.
#ifndef GLUONBERT_OPS_COMMON_H_
#define GLUONBERT_OPS_COMMON_H_

#include <cstdint>
#include <vector>

#include "mxnet/lib_api.h"

// exp() loops compiled for AVX-512, AVX2 and plain x86-64 (vectorized with glibc libmvec
// under -ffast-math); the loader picks the one for this CPU
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

namespace gluonbert {

inline int64_t size_of(const mxnet::ext::MXTensor& t) {
  int64_t n = 1;
  for (auto d : t.shape) n *= d;
  return n;
}

// Type inference of an operator `op` that takes and gives float32 only
inline mxnet::ext::MXReturnValue float32_only(const char* op, std::vector<int>* in,
                                              std::vector<int>* out) {
  for (int type : *in) {
    if (type != mxnet::ext::kFloat32) {
      MX_ERROR_MSG << op << " computes in float32 only";
      return mxnet::ext::MX_FAIL;
    }
  }
  for (auto& type : *out) type = mxnet::ext::kFloat32;
  return mxnet::ext::MX_SUCCESS;
}

}  // namespace gluonbert

#endif  // GLUONBERT_OPS_COMMON_H_
