// The optimizer's passes over every parameter, threaded and vectorised.
//
// gb_adam_update: one Adam step of a parameter (inputs weight, grad, mean, var; mean and var
// updated in place, the new weight written to the output, which may be the weight itself),
// with MXNet's adam_update's arithmetic and, before it, the weight scaled by `decay` (decoupled
// weight decay: 1 - lr * wd). MXNet 1.9.1 has adam_update (L2 decay only) and adamw_update,
// which makes five single-threaded passes; decoupled decay on adam_update took a pass of its
// own over every weight. Here it is one pass.
//
// gb_sum_sq: the sum of the squares of every element of its inputs, as a (1,) array: the
// squared global gradient norm. MXNet's multi_sum_sq sums each array on one core.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>
#include <omp.h>

#include "common.h"
#include "mxnet/lib_api.h"

using namespace mxnet::ext;
using gluonbert::size_of;

namespace {

float attr(const std::unordered_map<std::string, std::string>& attrs, const char* name,
           float fallback) {
  auto it = attrs.find(name);
  return it == attrs.end() ? fallback : std::stof(it->second);
}

// MXNet's clip_gradient: negative for no clipping, which is clipping at infinity
float clip_of(float clip_gradient) {
  return clip_gradient >= 0.f ? clip_gradient : std::numeric_limits<float>::infinity();
}

struct AdamStep {
  float lr, beta1, beta2, epsilon, wd, decay, rescale, clip;
};

// Elements [begin, end) of one parameter; the weight and out may be the same array. This file
// is compiled without fast-math and fused multiply-adds (gluonbert.ops.build): the rounding of
// MXNet's own adam_update, bit for bit. `clip` is infinite when the gradient is not clipped,
// so the loop has no branch to stop its vectorisation
VECTOR_CLONES void adam_range(const AdamStep s, const float* weight, const float* grad,
                              float* mean, float* var, float* out, int64_t begin,
                              int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float w = weight[i] * s.decay;
    float g = grad[i] * s.rescale + w * s.wd;
    g = g > s.clip ? s.clip : g < -s.clip ? -s.clip : g;
    const float m = s.beta1 * mean[i] + (1.f - s.beta1) * g;
    const float v = s.beta2 * var[i] + (1.f - s.beta2) * g * g;
    mean[i] = m;
    var[i] = v;
    out[i] = w - s.lr * m / (std::sqrt(v) + s.epsilon);
  }
}

// inputs: weight, grad, mean, var (the last two mutated); outputs: the new weight
MXReturnValue adam_forward(const std::unordered_map<std::string, std::string>& attrs,
                           std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                           const OpResource& res) {
  const AdamStep s{attr(attrs, "lr", 0.f),      attr(attrs, "beta1", 0.9f),
                   attr(attrs, "beta2", 0.999f), attr(attrs, "epsilon", 1e-6f),
                   attr(attrs, "wd", 0.f),       attr(attrs, "decay", 1.f),
                   attr(attrs, "rescale_grad", 1.f), clip_of(attr(attrs, "clip_gradient", -1.f))};
  const int64_t n = size_of(inputs->at(0));
  const float* weight = inputs->at(0).data<float>();
  const float* grad = inputs->at(1).data<float>();
  float* mean = inputs->at(2).data<float>();
  float* var = inputs->at(3).data<float>();
  float* out = outputs->at(0).data<float>();
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    adam_range(s, weight, grad, mean, var, out, n * t / threads, n * (t + 1) / threads);
  }
  return MX_SUCCESS;
}

MXReturnValue adam_attrs(const std::unordered_map<std::string, std::string>& attrs,
                         int* num_in, int* num_out) {
  *num_in = 4;
  *num_out = 1;
  return MX_SUCCESS;
}

MXReturnValue adam_mutated(const std::unordered_map<std::string, std::string>& attrs,
                           std::vector<int>* indices) {
  *indices = {2, 3};
  return MX_SUCCESS;
}

MXReturnValue adam_types(const std::unordered_map<std::string, std::string>& attrs,
                         std::vector<int>* in, std::vector<int>* out) {
  return gluonbert::float32_only("gb_adam_update", in, out);
}

MXReturnValue adam_shapes(const std::unordered_map<std::string, std::string>& attrs,
                          std::vector<std::vector<unsigned int>>* in,
                          std::vector<std::vector<unsigned int>>* out) {
  for (int k = 1; k < 4; ++k) {
    if (in->at(k) != in->at(0)) {
      MX_ERROR_MSG << "gb_adam_update: weight, grad, mean and var must have one shape";
      return MX_FAIL;
    }
  }
  out->at(0) = in->at(0);
  return MX_SUCCESS;
}

// Elements are summed in float within chunks of this many, chunks in double
constexpr int64_t kChunk = 1 << 14;

// Sixteen running sums, one vector's worth, since without fast-math the compiler may not
// reorder one sum into several
VECTOR_CLONES float sum_sq_range(const float* x, int64_t n) {
  float partial[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) partial[k] += x[i + k] * x[i + k];
  float sum = 0.f;
  for (int k = 0; k < 16; ++k) sum += partial[k];
  for (; i < n; ++i) sum += x[i] * x[i];
  return sum;
}

// inputs: any number of float32 arrays; outputs: (1,) the sum of their squares
MXReturnValue sum_sq_forward(const std::unordered_map<std::string, std::string>& attrs,
                             std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                             const OpResource& res) {
  struct Chunk {
    const float* data;
    int64_t size;
  };
  std::vector<Chunk> chunks;
  for (MXTensor& input : *inputs) {
    const float* data = input.data<float>();
    const int64_t n = size_of(input);
    for (int64_t begin = 0; begin < n; begin += kChunk)
      chunks.push_back({data + begin, std::min(kChunk, n - begin)});
  }
  double total = 0.;
  const int64_t count = static_cast<int64_t>(chunks.size());
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (int64_t c = 0; c < count; ++c) total += sum_sq_range(chunks[c].data, chunks[c].size);
  outputs->at(0).data<float>()[0] = static_cast<float>(total);
  return MX_SUCCESS;
}

MXReturnValue sum_sq_attrs(const std::unordered_map<std::string, std::string>& attrs,
                           int* num_in, int* num_out) {
  auto it = attrs.find("num_arrays");
  *num_in = it == attrs.end() ? 1 : std::stoi(it->second);
  *num_out = 1;
  if (*num_in < 1) {
    MX_ERROR_MSG << "gb_sum_sq: num_arrays=" << *num_in << " must be at least 1";
    return MX_FAIL;
  }
  return MX_SUCCESS;
}

MXReturnValue sum_sq_types(const std::unordered_map<std::string, std::string>& attrs,
                           std::vector<int>* in, std::vector<int>* out) {
  return gluonbert::float32_only("gb_sum_sq", in, out);
}

MXReturnValue sum_sq_shapes(const std::unordered_map<std::string, std::string>& attrs,
                            std::vector<std::vector<unsigned int>>* in,
                            std::vector<std::vector<unsigned int>>* out) {
  out->at(0) = {1};
  return MX_SUCCESS;
}

}  // namespace

REGISTER_OP(gb_adam_update)
.setForward(adam_forward, "cpu")
.setParseAttrs(adam_attrs)
.setMutateInputs(adam_mutated)
.setInferType(adam_types)
.setInferShape(adam_shapes);

REGISTER_OP(gb_sum_sq)
.setForward(sum_sq_forward, "cpu")
.setParseAttrs(sum_sq_attrs)
.setInferType(sum_sq_types)
.setInferShape(sum_sq_shapes);
