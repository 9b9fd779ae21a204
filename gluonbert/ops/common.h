// Helpers shared by gluonbert's kernels.
#ifndef GLUONBERT_OPS_COMMON_H_
#define GLUONBERT_OPS_COMMON_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "mxnet/lib_api.h"

// exp() loops compiled for AVX-512, AVX2 and plain x86-64 (vectorized with glibc libmvec
// under -ffast-math); the loader picks the one for this CPU
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

namespace gluonbert {

// A boolean attribute as MXNet passes it ("1" or "True" for true), or `otherwise` if absent
inline bool flag(const std::unordered_map<std::string, std::string>& attrs, const char* name,
                 bool otherwise) {
  auto it = attrs.find(name);
  return it == attrs.end() ? otherwise : it->second == "1" || it->second == "True";
}

inline int64_t size_of(const mxnet::ext::MXTensor& t) {
  int64_t n = 1;
  for (auto d : t.shape) n *= d;
  return n;
}

// MXNet's bfloat16 type flag (mshadow::kBfloat16), which lib_api's MXDType does not name: the
// library is built with a lib_api that accepts it (gluonbert.compat.lib_api_source)
constexpr int kBfloat16 = 12;

// One bfloat16 as MXNet stores it: the upper half of a float32's bits
struct bf16 {
  uint16_t bits;
};

inline float to_float(float x) { return x; }
inline float to_float(bf16 x) {
  const uint32_t bits = static_cast<uint32_t>(x.bits) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline void put(float value, float* out) { *out = value; }
// Rounded as MXNet's amp_cast rounds on CPU (oneDNN's conversion): to the nearest even,
// denormals to a signed zero, NaN kept a (quiet) NaN
// (branch-free, so that loops of it vectorise)
inline void put(float value, bf16* out) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint32_t rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
  const bool nan = (bits & 0x7fffffffu) > 0x7f800000u, denormal = (bits & 0x7f800000u) == 0;
  bits = nan ? bits | 0x00400000u : denormal ? bits & 0x80000000u : rounded;
  out->bits = static_cast<uint16_t>(bits >> 16);
}

// `n` floats rounded into bfloat16 as `put` rounds them, sixteen at a time (GCC leaves
// `put` in a loop scalar or in narrow vectors)
inline __attribute__((always_inline)) void put_all(const float* in, bf16* out, int64_t n) {
  typedef uint32_t Bits __attribute__((vector_size(64)));
  typedef uint16_t Halves __attribute__((vector_size(32)));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    Bits bits;
    std::memcpy(&bits, in + i, sizeof bits);
    const Bits rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
    const Bits nan = (bits & 0x7fffffffu) > 0x7f800000u;  // all ones where true
    const Bits denormal = (bits & 0x7f800000u) == 0u;
    const Bits result = (nan & (bits | 0x00400000u)) |
                        (~nan & ((denormal & (bits & 0x80000000u)) | (~denormal & rounded)));
    const Halves halves = __builtin_convertvector(result >> 16, Halves);
    std::memcpy(out + i, &halves, sizeof halves);
  }
  for (; i < n; ++i) put(in[i], out + i);
}

// The bytes of one element of type flag `type` (float32 or bfloat16)
inline int64_t element_bytes(int type) { return type == kBfloat16 ? 2 : 4; }

// A float32 or bfloat16 tensor's first element, as a float
inline float first_value(mxnet::ext::MXTensor& t) {
  return t.dtype == kBfloat16 ? to_float(t.data<bf16>()[0]) : t.data<float>()[0];
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
