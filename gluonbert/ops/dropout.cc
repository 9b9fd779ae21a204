// gb_dropout: inverted dropout with the counter-based mask of dropout_mask.h. MXNet 1.9.1's
// CPU Dropout draws a Bernoulli per element from mt19937 states and stores the mask; here the
// mask is a hash of (key, offset), recomputed by the backward, and the pass is one sweep.
//
// The data may be bfloat16, as AMP leaves a dense layer's output: the output is float32
// regardless (the residual sum it feeds is float32) and the data's gradient is rounded to
// bfloat16 as amp_cast rounds: the float32 call after a cast, without the cast's pass.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"
#include "dropout_mask.h"
#include "mxnet/lib_api.h"

using namespace mxnet::ext;
using gluonbert::DropoutMask;
using gluonbert::bf16;
using gluonbert::size_of;

namespace {

// Elements per parallel chunk: a multiple of the vector width that never straddles 2^32
constexpr int64_t kChunk = 4096;

// out[i] = in[i] * scale where the mask keeps offset `begin + i`, else 0 (the mask by value:
// through a reference, the stores to `out` could alias it and the loop would not vectorise);
// one function per pair of types, as target_clones takes no templates
#define APPLY_MASK(In, Out)                                                                 \
  VECTOR_CLONES                                                                            \
  void apply_mask(const DropoutMask mask, int64_t begin, int64_t n, const In* in,         \
                  Out* out) {                                                              \
    const uint32_t high = static_cast<uint32_t>(begin >> 32);                              \
    const uint32_t low = static_cast<uint32_t>(begin);                                     \
    for (int64_t i = 0; i < n; ++i) {  /* the load outside the choice: one vector select */ \
      const float kept = gluonbert::to_float(in[i]) * mask.scale;                          \
      gluonbert::put(mask.keep(low + static_cast<uint32_t>(i), high) ? kept : 0.f, out + i); \
    }                                                                                      \
  }
APPLY_MASK(float, float)
APPLY_MASK(bf16, float)

// Into bfloat16: masked in float32 a slice at a time (in L1), then rounded
VECTOR_CLONES
void apply_mask(const DropoutMask mask, int64_t begin, int64_t n, const float* in, bf16* out) {
  constexpr int64_t kSlice = 512;
  float masked[kSlice];
  for (int64_t start = 0; start < n; start += kSlice) {
    const int64_t m = std::min(kSlice, n - start);
    apply_mask(mask, begin + start, m, in + start, masked);
    gluonbert::put_all(masked, out + start, m);
  }
}

// out = in with `mask` applied, in parallel chunks; a copy when the mask keeps all
template <typename In, typename Out>
void masked_copy(const DropoutMask& mask, int64_t size, const In* in, Out* out) {
  if (!mask.active()) {
    if (static_cast<const void*>(in) == static_cast<void*>(out)) return;
#pragma omp parallel for
    for (int64_t i = 0; i < size; ++i) gluonbert::put(gluonbert::to_float(in[i]), out + i);
    return;
  }
#pragma omp parallel for
  for (int64_t begin = 0; begin < size; begin += kChunk)
    apply_mask(mask, begin, std::min(kChunk, size - begin), in + begin, out + begin);
}

// inputs: data, flag; outputs: out, key (the mask's key, for the backward)
MXReturnValue dropout_forward(const std::unordered_map<std::string, std::string>& attrs,
                              std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                              const OpResource& res) {
  float p;
  gluonbert::dropout_rate(attrs, "p", &p);
  MXTensor& data = inputs->at(0);
  const DropoutMask mask = gluonbert::draw_mask(p, gluonbert::training(inputs->at(1)), res,
                                                outputs->at(1).data<float>());
  float* out = outputs->at(0).data<float>();
  if (data.dtype == gluonbert::kBfloat16)
    masked_copy(mask, size_of(data), data.data<bf16>(), out);
  else
    masked_copy(mask, size_of(data), data.data<float>(), out);
  return MX_SUCCESS;
}

// inputs: the gradients of out and key, then data and flag, then out and key;
// outputs: the gradients of data and flag (zero: the flag is not learned), in their types
MXReturnValue dropout_backward(const std::unordered_map<std::string, std::string>& attrs,
                               std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                               const OpResource& res) {
  float p;
  gluonbert::dropout_rate(attrs, "p", &p);
  const DropoutMask mask = gluonbert::saved_mask(p, gluonbert::training(inputs->at(3)),
                                                 inputs->at(5).data<float>());
  MXTensor& grad = outputs->at(0);
  const float* dout = inputs->at(0).data<float>();
  if (grad.dtype == gluonbert::kBfloat16)
    masked_copy(mask, size_of(grad), dout, grad.data<bf16>());
  else
    masked_copy(mask, size_of(grad), dout, grad.data<float>());
  std::memset(outputs->at(1).data_ptr, 0, gluonbert::element_bytes(outputs->at(1).dtype));
  return MX_SUCCESS;
}

MXReturnValue dropout_attrs(const std::unordered_map<std::string, std::string>& attrs,
                            int* num_in, int* num_out) {
  float p;
  if (!gluonbert::dropout_rate(attrs, "p", &p)) {
    MX_ERROR_MSG << "gb_dropout: p=" << p << " is not a dropout rate in [0, 1)";
    return MX_FAIL;
  }
  *num_in = 2;
  *num_out = 2;
  return MX_SUCCESS;
}

// The data and the flag float32 or bfloat16; the output and the key float32
MXReturnValue dropout_types(const std::unordered_map<std::string, std::string>& attrs,
                            std::vector<int>* in, std::vector<int>* out) {
  for (int type : *in) {
    if (type != kFloat32 && type != gluonbert::kBfloat16) {
      MX_ERROR_MSG << "gb_dropout: the data and the flag are float32 or bfloat16";
      return MX_FAIL;
    }
  }
  out->at(0) = out->at(1) = kFloat32;
  return MX_SUCCESS;
}

MXReturnValue dropout_shapes(const std::unordered_map<std::string, std::string>& attrs,
                             std::vector<std::vector<unsigned int>>* in,
                             std::vector<std::vector<unsigned int>>* out) {
  if (in->at(1) != std::vector<unsigned int>{1}) {
    MX_ERROR_MSG << "gb_dropout: the flag must have shape (1,)";
    return MX_FAIL;
  }
  out->at(0) = in->at(0);
  out->at(1) = {2};
  return MX_SUCCESS;
}

}  // namespace

REGISTER_OP(gb_dropout)
.setForward(dropout_forward, "cpu")
.setBackward(dropout_backward, "cpu")
.setParseAttrs(dropout_attrs)
.setInferType(dropout_types)
.setInferShape(dropout_shapes);
