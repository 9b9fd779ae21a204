// gb_dropout: inverted dropout with the counter-based mask of dropout_mask.h. MXNet 1.9.1's
// CPU Dropout draws a Bernoulli per element from mt19937 states and stores the mask; here the
// mask is a hash of (key, offset), recomputed by the backward, and the pass is one sweep.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "common.h"
#include "dropout_mask.h"
#include "mxnet/lib_api.h"

using namespace mxnet::ext;
using gluonbert::DropoutMask;
using gluonbert::size_of;

namespace {

// Elements per parallel chunk: a multiple of the vector width that never straddles 2^32
constexpr int64_t kChunk = 4096;

// out[i] = in[i] * scale where the mask keeps offset `begin + i`, else 0 (the mask by value:
// through a reference, the stores to `out` could alias it and the loop would not vectorise)
VECTOR_CLONES
void apply_mask(const DropoutMask mask, int64_t begin, int64_t n, const float* in,
                float* out) {
  const uint32_t high = static_cast<uint32_t>(begin >> 32);
  const uint32_t low = static_cast<uint32_t>(begin);
  for (int64_t i = 0; i < n; ++i)
    out[i] = mask.keep(low + static_cast<uint32_t>(i), high) ? in[i] * mask.scale : 0.f;
}

// out = in with `mask` applied, in parallel chunks; a plain copy when the mask keeps all
void masked_copy(const DropoutMask& mask, int64_t size, const float* in, float* out) {
  if (!mask.active()) {
    if (in != out) std::copy(in, in + size, out);
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
  masked_copy(mask, size_of(data), data.data<float>(), outputs->at(0).data<float>());
  return MX_SUCCESS;
}

// inputs: the gradients of out and key, then data and flag, then out and key;
// outputs: the gradients of data and flag (zero: the flag is not learned)
MXReturnValue dropout_backward(const std::unordered_map<std::string, std::string>& attrs,
                               std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                               const OpResource& res) {
  float p;
  gluonbert::dropout_rate(attrs, "p", &p);
  const DropoutMask mask = gluonbert::saved_mask(p, gluonbert::training(inputs->at(3)),
                                                 inputs->at(5).data<float>());
  masked_copy(mask, size_of(inputs->at(0)), inputs->at(0).data<float>(),
              outputs->at(0).data<float>());
  outputs->at(1).data<float>()[0] = 0.f;
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

MXReturnValue dropout_types(const std::unordered_map<std::string, std::string>& attrs,
                            std::vector<int>* in, std::vector<int>* out) {
  return gluonbert::float32_only("gb_dropout", in, out);
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
