// CPU kernels that MXNet 1.9.1 lacks in a fast form, as an MXNet extension library (lib_api).
//
// gb_layer_norm: LayerNorm over the last axis. MXNet's own forward is fast, but its backward
// is a chain of generic broadcast and reduce kernels, ~20x slower than the forward on CPU;
// here both passes are one sweep over the rows, parallel with OpenMP.
// gb_softmax_ce: softmax cross-entropy with integer labels, per row. MXNet's log_softmax and
// pick make the MLM loss's backward three passes over (positions x vocabulary), the first
// writing a dense one-hot; here the backward is one pass: (softmax - onehot) * dloss.
#include <cmath>
#include <string>
#include <vector>
#include <omp.h>

#include "common.h"
#include "mxnet/lib_api.h"

using namespace mxnet::ext;
using gluonbert::size_of;

namespace {

// The first label outside [0, classes), or -1: a wrong label must fail, not read past a row
int64_t bad_label(const float* label, int64_t rows, int64_t classes) {
  for (int64_t r = 0; r < rows; ++r)
    if (!(label[r] >= 0 && label[r] < classes) || label[r] != static_cast<int64_t>(label[r]))
      return r;
  return -1;
}

float epsilon(const std::unordered_map<std::string, std::string>& attrs) {
  auto it = attrs.find("eps");
  return it == attrs.end() ? 1e-5f : std::stof(it->second);
}

// inputs: data, gamma, beta; outputs: out, mean, rstd (the last two per row, for backward)
MXReturnValue layer_norm_forward(const std::unordered_map<std::string, std::string>& attrs,
                                 std::vector<MXTensor>* inputs,
                                 std::vector<MXTensor>* outputs, const OpResource& res) {
  const float eps = epsilon(attrs);
  MXTensor& data = inputs->at(0);
  const int64_t width = data.shape.back(), rows = size_of(data) / width;
  const float* x = data.data<float>();
  const float* gamma = inputs->at(1).data<float>();
  const float* beta = inputs->at(2).data<float>();
  float* y = outputs->at(0).data<float>();
  float* mean = outputs->at(1).data<float>();
  float* rstd = outputs->at(2).data<float>();
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * width;
    float* yr = y + r * width;
    float sum = 0.f;
    for (int64_t j = 0; j < width; ++j) sum += xr[j];
    const float mu = sum / width;
    float sq = 0.f;
    for (int64_t j = 0; j < width; ++j) sq += (xr[j] - mu) * (xr[j] - mu);
    const float inv = 1.f / std::sqrt(sq / width + eps);
    for (int64_t j = 0; j < width; ++j) yr[j] = (xr[j] - mu) * inv * gamma[j] + beta[j];
    mean[r] = mu;
    rstd[r] = inv;
  }
  return MX_SUCCESS;
}

// inputs: the gradients of out, mean and rstd, then data, gamma, beta, then out, mean, rstd;
// outputs: the gradients of data, gamma and beta
MXReturnValue layer_norm_backward(const std::unordered_map<std::string, std::string>& attrs,
                                  std::vector<MXTensor>* inputs,
                                  std::vector<MXTensor>* outputs, const OpResource& res) {
  MXTensor& data = inputs->at(3);
  const int64_t width = data.shape.back(), rows = size_of(data) / width;
  const float* dy = inputs->at(0).data<float>();
  const float* x = data.data<float>();
  const float* gamma = inputs->at(4).data<float>();
  const float* mean = inputs->at(7).data<float>();
  const float* rstd = inputs->at(8).data<float>();
  float* dx = outputs->at(0).data<float>();
  float* dgamma = outputs->at(1).data<float>();
  float* dbeta = outputs->at(2).data<float>();
  const int threads = omp_get_max_threads();
  // Per-thread partial sums of dgamma and dbeta, added up at the end
  std::vector<float> partial(2 * threads * width, 0.f);
#pragma omp parallel num_threads(threads)
  {
    float* pg = partial.data() + 2 * omp_get_thread_num() * width;
    float* pb = pg + width;
#pragma omp for
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * width;
      const float* dyr = dy + r * width;
      float* dxr = dx + r * width;
      const float mu = mean[r], inv = rstd[r];
      float sum_g = 0.f, sum_gx = 0.f;
      for (int64_t j = 0; j < width; ++j) {
        const float xhat = (xr[j] - mu) * inv;
        const float g = dyr[j] * gamma[j];
        sum_g += g;
        sum_gx += g * xhat;
        pg[j] += dyr[j] * xhat;
        pb[j] += dyr[j];
      }
      const float mean_g = sum_g / width, mean_gx = sum_gx / width;
      for (int64_t j = 0; j < width; ++j) {
        const float xhat = (xr[j] - mu) * inv;
        dxr[j] = inv * (dyr[j] * gamma[j] - mean_g - xhat * mean_gx);
      }
    }
  }
  for (int64_t j = 0; j < width; ++j) {
    float g = 0.f, b = 0.f;
    for (int t = 0; t < threads; ++t) {
      g += partial[2 * t * width + j];
      b += partial[(2 * t + 1) * width + j];
    }
    dgamma[j] = g;
    dbeta[j] = b;
  }
  return MX_SUCCESS;
}

MXReturnValue layer_norm_attrs(const std::unordered_map<std::string, std::string>& attrs,
                               int* num_in, int* num_out) {
  *num_in = 3;
  *num_out = 3;
  return MX_SUCCESS;
}

MXReturnValue layer_norm_types(const std::unordered_map<std::string, std::string>& attrs,
                               std::vector<int>* in, std::vector<int>* out) {
  return gluonbert::float32_only("gb_layer_norm", in, out);
}

MXReturnValue layer_norm_shapes(const std::unordered_map<std::string, std::string>& attrs,
                                std::vector<std::vector<unsigned int>>* in,
                                std::vector<std::vector<unsigned int>>* out) {
  const auto& shape = in->at(0);
  if (shape.empty() || in->at(1).size() != 1 || in->at(1)[0] != shape.back() ||
      in->at(2) != in->at(1)) {
    MX_ERROR_MSG << "gb_layer_norm: gamma and beta must have shape (data.shape[-1],)";
    return MX_FAIL;
  }
  std::vector<unsigned int> per_row(shape.begin(), shape.end());
  per_row.back() = 1;
  out->at(0) = shape;
  out->at(1) = per_row;
  out->at(2) = per_row;
  return MX_SUCCESS;
}

// inputs: logits (rows, classes), labels (rows,); outputs: loss (rows,), logsumexp (rows,)
VECTOR_CLONES
MXReturnValue softmax_ce_forward(const std::unordered_map<std::string, std::string>& attrs,
                                 std::vector<MXTensor>* inputs,
                                 std::vector<MXTensor>* outputs, const OpResource& res) {
  MXTensor& logits = inputs->at(0);
  const int64_t classes = logits.shape.back(), rows = size_of(logits) / classes;
  const float* z = logits.data<float>();
  const float* label = inputs->at(1).data<float>();
  float* loss = outputs->at(0).data<float>();
  float* lse = outputs->at(1).data<float>();
  const int64_t bad = bad_label(label, rows, classes);
  if (bad >= 0) {
    MX_ERROR_MSG << "gb_softmax_ce: label " << label[bad] << " of row " << bad
                 << " is not a class id in [0, " << classes << ")";
    return MX_FAIL;
  }
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float* zr = z + r * classes;
    float top = zr[0];
    for (int64_t j = 1; j < classes; ++j) top = zr[j] > top ? zr[j] : top;
    float sum = 0.f;
#pragma omp simd reduction(+:sum)
    for (int64_t j = 0; j < classes; ++j) sum += std::exp(zr[j] - top);
    lse[r] = top + std::log(sum);
    loss[r] = lse[r] - zr[static_cast<int64_t>(label[r])];
  }
  return MX_SUCCESS;
}

// inputs: the gradients of loss and logsumexp, then logits and labels, then loss and
// logsumexp; outputs: the gradients of logits and labels (zero: labels are not learned)
VECTOR_CLONES
MXReturnValue softmax_ce_backward(const std::unordered_map<std::string, std::string>& attrs,
                                  std::vector<MXTensor>* inputs,
                                  std::vector<MXTensor>* outputs, const OpResource& res) {
  MXTensor& logits = inputs->at(2);
  const int64_t classes = logits.shape.back(), rows = size_of(logits) / classes;
  const float* dloss = inputs->at(0).data<float>();
  const float* z = logits.data<float>();
  const float* label = inputs->at(3).data<float>();
  const float* lse = inputs->at(5).data<float>();
  float* dz = outputs->at(0).data<float>();
  float* dlabel = outputs->at(1).data<float>();
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float* zr = z + r * classes;
    float* dzr = dz + r * classes;
    const float g = dloss[r], shift = lse[r];
#pragma omp simd
    for (int64_t j = 0; j < classes; ++j) dzr[j] = g * std::exp(zr[j] - shift);
    dzr[static_cast<int64_t>(label[r])] -= g;
    dlabel[r] = 0.f;
  }
  return MX_SUCCESS;
}

MXReturnValue softmax_ce_attrs(const std::unordered_map<std::string, std::string>& attrs,
                               int* num_in, int* num_out) {
  *num_in = 2;
  *num_out = 2;
  return MX_SUCCESS;
}

MXReturnValue softmax_ce_types(const std::unordered_map<std::string, std::string>& attrs,
                               std::vector<int>* in, std::vector<int>* out) {
  return gluonbert::float32_only("gb_softmax_ce", in, out);
}

MXReturnValue softmax_ce_shapes(const std::unordered_map<std::string, std::string>& attrs,
                                std::vector<std::vector<unsigned int>>* in,
                                std::vector<std::vector<unsigned int>>* out) {
  const auto& shape = in->at(0);
  std::vector<unsigned int> rows(shape.begin(), shape.end() - 1);
  if (shape.size() < 2 || in->at(1) != rows) {
    MX_ERROR_MSG << "gb_softmax_ce: labels must have the logits' shape without the last axis";
    return MX_FAIL;
  }
  out->at(0) = rows;
  out->at(1) = rows;
  return MX_SUCCESS;
}

}  // namespace

REGISTER_OP(gb_softmax_ce)
.setForward(softmax_ce_forward, "cpu")
.setBackward(softmax_ce_backward, "cpu")
.setParseAttrs(softmax_ce_attrs)
.setInferType(softmax_ce_types)
.setInferShape(softmax_ce_shapes);

REGISTER_OP(gb_layer_norm)
.setForward(layer_norm_forward, "cpu")
.setBackward(layer_norm_backward, "cpu")
.setParseAttrs(layer_norm_attrs)
.setInferType(layer_norm_types)
.setInferShape(layer_norm_shapes);

MXReturnValue initialize(int version) {
  return version >= 10900 ? MX_SUCCESS : MX_FAIL;
}
