// CPU kernels that MXNet 1.9.1 lacks in a fast form, as an MXNet extension library (lib_api).
//
// gb_layer_norm: LayerNorm over the last axis. MXNet's own forward is fast, but its backward
// is a chain of generic broadcast and reduce kernels, ~20x slower than the forward on CPU;
// here both passes are one sweep over the rows, parallel with OpenMP. The data may be
// bfloat16 (widened as it is read; its gradient rounded as amp_cast rounds), and with
// `twin=1` a fourth output holds the result rounded to bfloat16 as well: under bfloat16 AMP
// the next dense layer reads that twin and the residual the float32 result, so neither needs
// a cast, and the backward adds the two outputs' gradients itself.
// gb_softmax_ce: softmax cross-entropy with integer labels, per row. MXNet's log_softmax and
// pick make the MLM loss's backward three passes over (positions x vocabulary), the first
// writing a dense one-hot; here the backward is one pass: (softmax - onehot) * dloss. The
// logits may be bfloat16, as AMP leaves the decoder's output (widened row by row; their
// gradient rounded as amp_cast rounds).
#include <cmath>
#include <cstring>
#include <string>
#include <vector>
#include <omp.h>

#include "common.h"
#include "mxnet/lib_api.h"

using namespace mxnet::ext;
using gluonbert::bf16;
using gluonbert::size_of;
using gluonbert::to_float;

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

bool twin(const std::unordered_map<std::string, std::string>& attrs) {
  return gluonbert::flag(attrs, "twin", false);
}

// Per row, compiled for AVX-512, AVX2 and plain x86-64 (VECTOR_CLONES): a bfloat16 row
// widened, a float32 row rounded
VECTOR_CLONES
void widen(const bf16* in, int64_t n, float* out) {
  for (int64_t j = 0; j < n; ++j) out[j] = to_float(in[j]);
}

VECTOR_CLONES
void round_to_bfloat16(const float* in, int64_t n, bf16* out) { gluonbert::put_all(in, out, n); }

// Row r of `data` in float32: in place, or widened into `row`
inline const float* row_of(const float* data, int64_t r, int64_t width, float* row) {
  return data + r * width;
}
inline const float* row_of(const bf16* data, int64_t r, int64_t width, float* row) {
  widen(data + r * width, width, row);
  return row;
}

// Where row r of `out` is computed: in place when float32, else in the float32 `row`
inline float* row_target(float* out, int64_t r, int64_t width, float* row) {
  return out + r * width;
}
inline float* row_target(bf16* out, int64_t r, int64_t width, float* row) { return row; }

// `row` (float32) into row r of `out`: computed there already, or rounded to bfloat16
inline void put_row(const float* row, int64_t r, int64_t width, float* out) {}
inline void put_row(const float* row, int64_t r, int64_t width, bf16* out) {
  round_to_bfloat16(row, width, out + r * width);
}

// One row normalized: y, its mean and 1 / std
VECTOR_CLONES
void normalize(const float* x, const float* gamma, const float* beta, float eps,
               int64_t width, float* y, float* mean, float* rstd) {
  float sum = 0.f;
  for (int64_t j = 0; j < width; ++j) sum += x[j];
  const float mu = sum / width;
  float sq = 0.f;
  for (int64_t j = 0; j < width; ++j) sq += (x[j] - mu) * (x[j] - mu);
  const float inv = 1.f / std::sqrt(sq / width + eps);
  for (int64_t j = 0; j < width; ++j) y[j] = (x[j] - mu) * inv * gamma[j] + beta[j];
  *mean = mu;
  *rstd = inv;
}

// One row's dx from its dy, and its terms of dgamma and dbeta added to `pg` and `pb`
VECTOR_CLONES
void normalize_backward(const float* x, const float* dy, const float* gamma, float mu,
                        float inv, int64_t width, float* dx, float* pg, float* pb) {
  float sum_g = 0.f, sum_gx = 0.f;
  for (int64_t j = 0; j < width; ++j) {
    const float xhat = (x[j] - mu) * inv;
    const float g = dy[j] * gamma[j];
    sum_g += g;
    sum_gx += g * xhat;
    pg[j] += dy[j] * xhat;
    pb[j] += dy[j];
  }
  const float mean_g = sum_g / width, mean_gx = sum_gx / width;
  for (int64_t j = 0; j < width; ++j) {
    const float xhat = (x[j] - mu) * inv;
    dx[j] = inv * (dy[j] * gamma[j] - mean_g - xhat * mean_gx);
  }
}

// The gradient of a row's output and of its bfloat16 twin, added
VECTOR_CLONES
void add_twin(const float* dy, const bf16* dtwin, int64_t n, float* out) {
  for (int64_t j = 0; j < n; ++j) out[j] = dy[j] + to_float(dtwin[j]);
}

// data: float or bf16; twin: null, or out rounded to bfloat16
template <typename T>
void layer_norm_rows(const T* x, const float* gamma, const float* beta, float eps,
                     int64_t rows, int64_t width, float* y, float* mean, float* rstd,
                     bf16* twin) {
#pragma omp parallel
  {
    std::vector<float> widened(width);
#pragma omp for
    for (int64_t r = 0; r < rows; ++r) {
      float* yr = y + r * width;
      normalize(row_of(x, r, width, widened.data()), gamma, beta, eps, width, yr, mean + r,
                rstd + r);
      if (twin) put_row(yr, r, width, twin);
    }
  }
}

// inputs: data, gamma, beta; outputs: out, mean, rstd (the last two per row, for backward)
// [, out in bfloat16]
MXReturnValue layer_norm_forward(const std::unordered_map<std::string, std::string>& attrs,
                                 std::vector<MXTensor>* inputs,
                                 std::vector<MXTensor>* outputs, const OpResource& res) {
  const float eps = epsilon(attrs);
  MXTensor& data = inputs->at(0);
  const int64_t width = data.shape.back(), rows = size_of(data) / width;
  const float* gamma = inputs->at(1).data<float>();
  const float* beta = inputs->at(2).data<float>();
  float* y = outputs->at(0).data<float>();
  float* mean = outputs->at(1).data<float>();
  float* rstd = outputs->at(2).data<float>();
  bf16* copy = twin(attrs) ? outputs->at(3).data<bf16>() : nullptr;
  if (data.dtype == gluonbert::kBfloat16)
    layer_norm_rows(data.data<bf16>(), gamma, beta, eps, rows, width, y, mean, rstd, copy);
  else
    layer_norm_rows(data.data<float>(), gamma, beta, eps, rows, width, y, mean, rstd, copy);
  return MX_SUCCESS;
}

// dy: out's gradient; dtwin: null, or the twin's, added to it; dx in data's type
template <typename T>
void layer_norm_backward_rows(const float* dy, const bf16* dtwin, const T* x,
                              const float* gamma, const float* mean, const float* rstd,
                              int64_t rows, int64_t width, T* dx, float* dgamma,
                              float* dbeta) {
  const int threads = omp_get_max_threads();
  // Per-thread partial sums of dgamma and dbeta, added up at the end
  std::vector<float> partial(2 * threads * width, 0.f);
#pragma omp parallel num_threads(threads)
  {
    float* pg = partial.data() + 2 * omp_get_thread_num() * width;
    float* pb = pg + width;
    std::vector<float> widened(width), summed(width), result(width);
#pragma omp for
    for (int64_t r = 0; r < rows; ++r) {
      const float* dyr = dy + r * width;
      if (dtwin) {
        add_twin(dyr, dtwin + r * width, width, summed.data());
        dyr = summed.data();
      }
      float* dxr = row_target(dx, r, width, result.data());
      normalize_backward(row_of(x, r, width, widened.data()), dyr, gamma, mean[r], rstd[r],
                         width, dxr, pg, pb);
      put_row(dxr, r, width, dx);
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
}

// inputs: the gradients of the outputs, then data, gamma, beta, then the outputs; outputs:
// the gradients of data, gamma and beta
MXReturnValue layer_norm_backward(const std::unordered_map<std::string, std::string>& attrs,
                                  std::vector<MXTensor>* inputs,
                                  std::vector<MXTensor>* outputs, const OpResource& res) {
  const int outs = twin(attrs) ? 4 : 3;
  MXTensor& data = inputs->at(outs);
  const int64_t width = data.shape.back(), rows = size_of(data) / width;
  const float* dy = inputs->at(0).data<float>();
  const bf16* dtwin = outs == 4 ? inputs->at(3).data<bf16>() : nullptr;
  const float* gamma = inputs->at(outs + 1).data<float>();
  const float* mean = inputs->at(outs + 3 + 1).data<float>();
  const float* rstd = inputs->at(outs + 3 + 2).data<float>();
  float* dgamma = outputs->at(1).data<float>();
  float* dbeta = outputs->at(2).data<float>();
  if (data.dtype == gluonbert::kBfloat16)
    layer_norm_backward_rows(dy, dtwin, data.data<bf16>(), gamma, mean, rstd, rows, width,
                             outputs->at(0).data<bf16>(), dgamma, dbeta);
  else
    layer_norm_backward_rows(dy, dtwin, data.data<float>(), gamma, mean, rstd, rows, width,
                             outputs->at(0).data<float>(), dgamma, dbeta);
  return MX_SUCCESS;
}

MXReturnValue layer_norm_attrs(const std::unordered_map<std::string, std::string>& attrs,
                               int* num_in, int* num_out) {
  *num_in = 3;
  *num_out = twin(attrs) ? 4 : 3;
  return MX_SUCCESS;
}

// data float32 or bfloat16, gamma and beta float32; the outputs float32 but the twin
MXReturnValue layer_norm_types(const std::unordered_map<std::string, std::string>& attrs,
                               std::vector<int>* in, std::vector<int>* out) {
  if ((in->at(0) != kFloat32 && in->at(0) != gluonbert::kBfloat16) || in->at(1) != kFloat32 ||
      in->at(2) != kFloat32) {
    MX_ERROR_MSG << "gb_layer_norm: the data is float32 or bfloat16, gamma and beta float32";
    return MX_FAIL;
  }
  out->at(0) = out->at(1) = out->at(2) = kFloat32;
  if (out->size() == 4) out->at(3) = gluonbert::kBfloat16;
  return MX_SUCCESS;
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
  if (out->size() == 4) out->at(3) = shape;
  return MX_SUCCESS;
}

// inputs: logits (rows, classes), labels (rows,); outputs: loss (rows,), logsumexp (rows,)
VECTOR_CLONES
MXReturnValue softmax_ce_forward(const std::unordered_map<std::string, std::string>& attrs,
                                 std::vector<MXTensor>* inputs,
                                 std::vector<MXTensor>* outputs, const OpResource& res) {
  MXTensor& logits = inputs->at(0);
  const int64_t classes = logits.shape.back(), rows = size_of(logits) / classes;
  const bool bfloat16 = logits.dtype == gluonbert::kBfloat16;
  const float* label = inputs->at(1).data<float>();
  float* loss = outputs->at(0).data<float>();
  float* lse = outputs->at(1).data<float>();
  const int64_t bad = bad_label(label, rows, classes);
  if (bad >= 0) {
    MX_ERROR_MSG << "gb_softmax_ce: label " << label[bad] << " of row " << bad
                 << " is not a class id in [0, " << classes << ")";
    return MX_FAIL;
  }
#pragma omp parallel
  {
  std::vector<float> widened(bfloat16 ? classes : 0);
#pragma omp for
  for (int64_t r = 0; r < rows; ++r) {
    const float* zr = bfloat16 ? row_of(logits.data<bf16>(), r, classes, widened.data())
                               : logits.data<float>() + r * classes;
    float top = zr[0];
    for (int64_t j = 1; j < classes; ++j) top = zr[j] > top ? zr[j] : top;
    float sum = 0.f;
#pragma omp simd reduction(+:sum)
    for (int64_t j = 0; j < classes; ++j) sum += std::exp(zr[j] - top);
    lse[r] = top + std::log(sum);
    loss[r] = lse[r] - zr[static_cast<int64_t>(label[r])];
  }
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
  const bool bfloat16 = logits.dtype == gluonbert::kBfloat16;
  const float* dloss = inputs->at(0).data<float>();
  const float* label = inputs->at(3).data<float>();
  const float* lse = inputs->at(5).data<float>();
  float* dlabel = outputs->at(1).data<float>();
#pragma omp parallel
  {
  std::vector<float> widened(bfloat16 ? classes : 0), result(bfloat16 ? classes : 0);
#pragma omp for
  for (int64_t r = 0; r < rows; ++r) {
    const float* zr = bfloat16 ? row_of(logits.data<bf16>(), r, classes, widened.data())
                               : logits.data<float>() + r * classes;
    float* dzr = bfloat16 ? result.data() : outputs->at(0).data<float>() + r * classes;
    const float g = dloss[r], shift = lse[r];
#pragma omp simd
    for (int64_t j = 0; j < classes; ++j) dzr[j] = g * std::exp(zr[j] - shift);
    dzr[static_cast<int64_t>(label[r])] -= g;
    if (bfloat16) put_row(dzr, r, classes, outputs->at(0).data<bf16>());
    dlabel[r] = 0.f;
  }
  }
  return MX_SUCCESS;
}

MXReturnValue softmax_ce_attrs(const std::unordered_map<std::string, std::string>& attrs,
                               int* num_in, int* num_out) {
  *num_in = 2;
  *num_out = 2;
  return MX_SUCCESS;
}

// logits float32 or bfloat16, labels float32; loss and log-sum-exp float32
MXReturnValue softmax_ce_types(const std::unordered_map<std::string, std::string>& attrs,
                               std::vector<int>* in, std::vector<int>* out) {
  if ((in->at(0) != kFloat32 && in->at(0) != gluonbert::kBfloat16) || in->at(1) != kFloat32) {
    MX_ERROR_MSG << "gb_softmax_ce: the logits are float32 or bfloat16, the labels float32";
    return MX_FAIL;
  }
  out->at(0) = out->at(1) = kFloat32;
  return MX_SUCCESS;
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
