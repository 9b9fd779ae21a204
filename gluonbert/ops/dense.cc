// gb_dense: a dense layer in bfloat16 on oneDNN 3's matmul, which runs AMX's brgemm kernels.
//
// MXNet 1.9.1's FullyConnected runs oneDNN 2.4's inner product, whose bfloat16 GEMM
// (gemm:jit) reaches about half of what AMX's brgemm kernels reach; BERT's dense layers are
// two thirds of a bfloat16 training step. This operator computes the same product,
// out = data . weight^T + bias over data's last axis, with the oneDNN 3 library that the
// onednn-cpu-gomp wheel ships (libdnnl.so.3: GNU OpenMP, as MXNet; MXNet's own oneDNN is
// internal to libmxnet.so, so the two do not meet).
//
// Every product accumulates in float32 and rounds once to bfloat16, as MXNet's does.
// oneDNN keeps the primitives it creates in its own cache, so a shape is compiled once.
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.h"

using namespace mxnet::ext;
using gluonbert::bf16;

namespace {

using tag_dims = dnnl::memory::dims;
constexpr auto kBf16 = dnnl::memory::data_type::bf16;
constexpr dnnl::memory::dim kAnyRows = DNNL_RUNTIME_DIM_VAL;

// Primitives kept in oneDNN's cache: a few shapes per layer and batch width, so that a long run
// of varying token counts (packed batches) does not grow it to oneDNN's default of 1,024
constexpr int kCachedPrimitives = 128;

dnnl::engine& engine() {
  static dnnl::engine* cpu = [] {
    if (!std::getenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY"))
      dnnl::set_primitive_cache_capacity(kCachedPrimitives);
    return new dnnl::engine(dnnl::engine::kind::cpu, 0);
  }();
  return *cpu;
}

// A (rows, cols) bfloat16 matrix, row-major, or its transpose's view when `transposed`
dnnl::memory::desc matrix(dnnl::memory::dim rows, dnnl::memory::dim cols,
                          bool transposed = false) {
  return dnnl::memory::desc({rows, cols}, kBf16,
                            transposed ? tag_dims{1, rows} : tag_dims{cols, 1});
}

// dst(rows, n) = src(rows, k) . weights(k, n) [+ bias(1, n)], each given by its desc
struct Product {
  dnnl::memory::desc src, weights, bias, dst;
};

// Runs one product on the given buffers; `product`'s row count may be kAnyRows, then `rows`
// says it (forward and the data's gradient: brgemm takes the count at run time). False, with
// MXNet's error message set, where oneDNN fails
bool run(const Product& product, int64_t rows, void* src, void* weights, void* bias,
         void* dst) try {
  static std::mutex creating;
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul primitive;
  {
    std::lock_guard<std::mutex> lock(creating);
    pd = product.bias.is_zero()
             ? dnnl::matmul::primitive_desc(engine(), product.src, product.weights, product.dst)
             : dnnl::matmul::primitive_desc(engine(), product.src, product.weights,
                                            product.bias, product.dst);
    primitive = dnnl::matmul(pd);
  }
  auto with_rows = [rows](const dnnl::memory::desc& desc) {
    tag_dims dims = desc.get_dims(), strides = desc.get_strides();
    for (auto& d : dims)
      if (d == kAnyRows) d = rows;
    return dnnl::memory::desc(dims, desc.get_data_type(), strides);
  };
  static thread_local dnnl::stream stream(engine());
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, dnnl::memory(with_rows(product.src), engine(), src)},
      {DNNL_ARG_WEIGHTS, dnnl::memory(with_rows(product.weights), engine(), weights)},
      {DNNL_ARG_DST, dnnl::memory(with_rows(product.dst), engine(), dst)}};
  if (bias) args[DNNL_ARG_BIAS] = dnnl::memory(product.bias, engine(), bias);
  primitive.execute(stream, args);
  stream.wait();
  return true;
} catch (const dnnl::error& error) {
  MX_ERROR_MSG << "gb_dense: oneDNN failed: " << error.what();
  return false;
}

bool has_bias(const std::unordered_map<std::string, std::string>& attrs) {
  return !gluonbert::flag(attrs, "no_bias", false);
}

// inputs: data (..., in_units), weight (units, in_units), bias (units,) unless no_bias;
// output: (..., units); all bfloat16
MXReturnValue dense_forward(const std::unordered_map<std::string, std::string>& attrs,
                            std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                            const OpResource& res) {
  const MXTensor& data = inputs->at(0);
  const int64_t in_units = data.shape.back(), rows = gluonbert::size_of(data) / in_units;
  const int64_t units = inputs->at(1).shape[0];
  const bool bias = has_bias(attrs);
  return run({matrix(kAnyRows, in_units), matrix(in_units, units, true),
              bias ? matrix(1, units) : dnnl::memory::desc(), matrix(kAnyRows, units)},
             rows, inputs->at(0).data<bf16>(), inputs->at(1).data<bf16>(),
             bias ? inputs->at(2).data<bf16>() : nullptr, outputs->at(0).data<bf16>())
             ? MX_SUCCESS : MX_FAIL;
}

// The bias's gradient: the column sums of dy (rows, units), in float32, rounded once. Each
// thread sums its own block of rows and the blocks add up in thread order, so the result
// does not depend on which thread finishes first
void column_sums(const bf16* dy, int64_t rows, int64_t units, bf16* out) {
  const int threads = omp_get_max_threads();
  std::vector<float> parts(static_cast<size_t>(threads) * units, 0.0f);
#pragma omp parallel num_threads(threads)
  {
    float* part = parts.data() + static_cast<size_t>(omp_get_thread_num()) * units;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const bf16* row = dy + r * units;
      for (int64_t c = 0; c < units; ++c) part[c] += gluonbert::to_float(row[c]);
    }
  }
  std::vector<float> sums(parts.begin(), parts.begin() + units);
  for (int t = 1; t < threads; ++t)
    for (int64_t c = 0; c < units; ++c) sums[c] += parts[static_cast<size_t>(t) * units + c];
  gluonbert::put_all(sums.data(), out, units);
}

// inputs: the output's gradient, then data, weight (bias), then the output;
// outputs: the gradients of data, weight (and bias)
MXReturnValue dense_backward(const std::unordered_map<std::string, std::string>& attrs,
                             std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                             const OpResource& res) {
  const MXTensor& data = inputs->at(1);
  const int64_t in_units = data.shape.back(), rows = gluonbert::size_of(data) / in_units;
  const int64_t units = inputs->at(2).shape[0];
  bf16* dy = inputs->at(0).data<bf16>();
  // d data (rows, in_units) = dy (rows, units) . weight (units, in_units)
  if (!run({matrix(kAnyRows, units), matrix(units, in_units), {}, matrix(kAnyRows, in_units)},
           rows, dy, inputs->at(2).data<bf16>(), nullptr, outputs->at(0).data<bf16>()))
    return MX_FAIL;
  // d weight (units, in_units) = dy^T (units, rows) . data (rows, in_units): brgemm does not
  // take a run-time reduction length, so each row count is its own primitive
  if (!run({matrix(units, rows, true), matrix(rows, in_units), {}, matrix(units, in_units)},
           rows, dy, inputs->at(1).data<bf16>(), nullptr, outputs->at(1).data<bf16>()))
    return MX_FAIL;
  if (has_bias(attrs)) column_sums(dy, rows, units, outputs->at(2).data<bf16>());
  return MX_SUCCESS;
}

MXReturnValue dense_attrs(const std::unordered_map<std::string, std::string>& attrs,
                          int* num_in, int* num_out) {
  *num_in = has_bias(attrs) ? 3 : 2;
  *num_out = 1;
  return MX_SUCCESS;
}

MXReturnValue dense_types(const std::unordered_map<std::string, std::string>& attrs,
                          std::vector<int>* in, std::vector<int>* out) {
  for (int type : *in) {
    if (type != gluonbert::kBfloat16) {
      MX_ERROR_MSG << "gb_dense computes in bfloat16 only (data, weight and bias)";
      return MX_FAIL;
    }
  }
  out->at(0) = gluonbert::kBfloat16;
  return MX_SUCCESS;
}

MXReturnValue dense_shapes(const std::unordered_map<std::string, std::string>& attrs,
                           std::vector<std::vector<unsigned int>>* in,
                           std::vector<std::vector<unsigned int>>* out) {
  const auto& data = in->at(0);
  const auto& weight = in->at(1);
  if (data.empty() || weight.size() != 2 || weight[1] != data.back() ||
      (in->size() == 3 && (in->at(2).size() != 1 || in->at(2)[0] != weight[0]))) {
    MX_ERROR_MSG << "gb_dense: the weight must have shape (units, data.shape[-1]) and the "
                    "bias (units,)";
    return MX_FAIL;
  }
  out->at(0) = data;
  out->at(0).back() = weight[0];
  return MX_SUCCESS;
}

}  // namespace

REGISTER_OP(gb_dense)
.setForward(dense_forward, "cpu")
.setBackward(dense_backward, "cpu")
.setParseAttrs(dense_attrs)
.setInferType(dense_types)
.setInferShape(dense_shapes);
