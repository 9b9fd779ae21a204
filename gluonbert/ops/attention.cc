// gb_attention: self-attention on the interleaved Q/K/V projection (seq, batch, 3 * hidden)
// that MXNet's interleaved_matmul_selfatt_qk / _valatt take (per head h the columns
// q_h, k_h, v_h, each head_dim wide), fused: scores Q.K^T / sqrt(head_dim), an additive
// padding mask, softmax, dropout and the weighted sum of V, forward and backward.
//
// MXNet 1.9.1 runs those two operators single-threaded on CPU and its softmax, dropout and
// their backwards as separate passes over (batch * heads, seq, seq). Here each (sequence,
// head) pair is one task for an OpenMP thread, which keeps its (seq, seq) tiles in its own
// scratch memory. The forward stores the probabilities (output 1, (batch * heads, seq, seq))
// for the backward: storing them measured faster than keeping each row's log-sum-exp only and
// recomputing Q.K^T in the backward (1.25x on the fine-tuning shapes, 32 x 128, 4 heads).
//
// With `masked=1` a third input masks the scores: either (batch,) valid lengths, whose keys
// at and after the length get `mask_value` added, or an additive (batch * heads, seq, seq)
// mask, row b * heads + h for head h of sequence b (the layout of MXNet's fused operators).
//
// With `packed=1` the tokens come without padding (gluonbert.model.packing): qkv is
// (tokens, 3 * hidden), each sequence's tokens in consecutive rows, and two more inputs say
// where: the (batch,) valid lengths (the mask input) and a (batch, seq) map whose entry (b, 0)
// is the row of sequence b's first token. Each pair then computes on its own length only, and
// the output is (tokens, hidden), its rows those of qkv; rows of no sequence (padding a packed
// batch up to a round size) are zero in the output and in qkv's gradient. The probabilities
// keep their (batch * heads, seq, seq) slots and the dropout its offsets (task, i, j), so a
// packed batch draws the dropout mask of the padded one.
//
// With `first=1` only each sequence's first position queries (the <cls> token, all that a
// pooling head reads of the last layer): the output is (batch, hidden), row b that of
// sequence b, the probabilities (batch * heads, 1, seq), and qkv's gradient is zero in the
// queries of the other positions. The numbers, dropout included, are those of the full call's
// first positions.
//
// qkv (and with it the output and both gradients) is float32 or bfloat16, as bfloat16 AMP
// leaves the projection: the pair's rows are widened to float32 when copied into scratch and
// the results rounded to bfloat16 as amp_cast rounds, so the numbers are those of the float32
// call between two casts, without the casts' passes over memory. The probabilities stay
// float32.
#include <cmath>
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
using gluonbert::to_float;

namespace {

enum MaskKind { kNoMask, kLengths, kAdditive };

struct Attrs {
  int64_t heads = 1;
  float dropout = 0.f;
  bool masked = false;
  bool packed = false;
  bool first = false;
  float mask_value = -1e6f;
};

bool parse(const std::unordered_map<std::string, std::string>& attrs, Attrs* out) {
  auto get = [&attrs](const char* name, const char* fallback) {
    auto it = attrs.find(name);
    return it == attrs.end() ? std::string(fallback) : it->second;
  };
  auto on = [&get](const char* name) {  // a switch, given as 1 or as Python's True
    const std::string value = get(name, "0");
    return value == "1" || value == "True" || value == "true";
  };
  out->heads = std::stoll(get("heads", "1"));
  out->masked = on("masked");
  out->packed = on("packed");
  out->first = on("first");
  out->mask_value = std::stof(get("mask_value", "-1e6"));
  if (out->packed && !out->masked) {
    MX_ERROR_MSG << "gb_attention: packed=1 needs masked=1 (the lengths and the row map)";
    return false;
  }
  if (out->heads < 1) {
    MX_ERROR_MSG << "gb_attention: heads=" << out->heads << " must be at least 1";
    return false;
  }
  if (!gluonbert::dropout_rate(attrs, "dropout", &out->dropout)) {
    MX_ERROR_MSG << "gb_attention: dropout=" << out->dropout << " is not a rate in [0, 1)";
    return false;
  }
  return true;
}

// The sizes of one call and the (sequence, head) pair a task works on
struct Problem {
  int64_t seq, batch, heads, dim;  // dim: one head's width; seq: the padded length
  float scale;                     // 1 / sqrt(dim)
  // Packed tokens: the (batch,) lengths and the (batch, seq) row map; null when padded
  const float* lengths = nullptr;
  const float* rows = nullptr;
  bool first = false;  // only the first positions query
  bool packed() const { return rows != nullptr; }
  // The query rows of a pair over S positions, and the rows of its slot of probabilities
  int64_t queries(int64_t S) const { return first ? 1 : S; }
  int64_t slot_rows() const { return first ? 1 : seq; }
  // Where the output of head h of sequence b starts
  int64_t out_of(int64_t b, int64_t h) const {
    return (first ? b : first_row(b)) * heads * dim + h * dim;
  }
  // Between sequence positions: the next token of a sequence is the next row when packed
  int64_t qkv_ld() const { return (packed() ? 1 : batch) * heads * 3 * dim; }
  int64_t out_ld() const { return (packed() ? 1 : batch) * heads * dim; }
  // The row (of width 3 * hidden in qkv, hidden in the output) of sequence b's first token;
  // padded, row s * batch + b holds position s of sequence b
  int64_t first_row(int64_t b) const {
    return packed() ? static_cast<int64_t>(rows[b * seq]) : b;
  }
  // The positions pair `task` computes on: its sequence's length when packed
  int64_t positions(int64_t task) const {
    return packed() ? static_cast<int64_t>(lengths[task / heads]) : seq;
  }
};

struct Mask {
  MaskKind kind;
  float value;
  const float* data;  // lengths (batch,) or additive (batch * heads, seq, seq)
};

// ---- a small register-blocked GEMM, vectorised by GCC's vector extensions ----

// Eight floats (one AVX register, two SSE ones) or sixteen (one AVX-512 register): each
// pair's work is compiled for the widest vector its CPU has (ISA_VARIANTS below); wider
// types than the registers make GCC spill.
typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

// A block of C is kRows rows by two vectors of kLanes floats: 12 accumulators of AVX's 16
// registers, 16 of AVX-512's 32 (more rows reuse each load of B more)
template <typename V> struct Block { static constexpr int kRows = 6, kLanes = 8; };
template <> struct Block<v16> { static constexpr int kRows = 8, kLanes = 16; };

template <typename V>
inline __attribute__((always_inline)) V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename V>
inline __attribute__((always_inline)) void store(float* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

// Element (r, k) of A, or of A^T if `kTransposed` (A stored k-major)
template <bool kTransposed>
inline __attribute__((always_inline)) float at(const float* A, int64_t lda, int64_t r,
                                               int64_t k) {
  return kTransposed ? A[k * lda + r] : A[r * lda + k];
}

// R rows by two vectors of C
template <typename V, bool kTransposed, int R>
inline __attribute__((always_inline)) void gemm_block(
    int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
    float* C, int64_t ldc) {
  constexpr int W = Block<V>::kLanes;
  V acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = V{};
  for (int64_t k = 0; k < K; ++k) {
    const V b0 = load<V>(B + k * ldb), b1 = load<V>(B + k * ldb + W);
    for (int r = 0; r < R; ++r) {
      const float a = at<kTransposed>(A, lda, r, k);
      acc[r][0] += a * b0;
      acc[r][1] += a * b1;
    }
  }
  for (int r = 0; r < R; ++r) {
    store(C + r * ldc, alpha * acc[r][0]);
    store(C + r * ldc + W, alpha * acc[r][1]);
  }
}

// Columns [n, n + 2 * lanes) of C, every row: blocks of kRows rows, then of half as many,
// then single rows
template <typename V, bool kTransposed>
inline __attribute__((always_inline)) void gemm_columns(
    int64_t M, int64_t n, int64_t K, float alpha, const float* A, int64_t lda,
    const float* B, int64_t ldb, float* C, int64_t ldc) {
  constexpr int R = Block<V>::kRows;
  auto rows = [&](int64_t i) { return kTransposed ? A + i : A + i * lda; };
  int64_t i = 0;
  for (; i + R <= M; i += R)
    gemm_block<V, kTransposed, R>(K, alpha, rows(i), lda, B + n, ldb, C + i * ldc + n, ldc);
  for (; i + R / 2 <= M; i += R / 2)
    gemm_block<V, kTransposed, R / 2>(K, alpha, rows(i), lda, B + n, ldb, C + i * ldc + n,
                                      ldc);
  for (; i < M; ++i)
    gemm_block<V, kTransposed, 1>(K, alpha, rows(i), lda, B + n, ldb, C + i * ldc + n, ldc);
}

// C (M x N, row stride ldc) = alpha * A . B, all row-major: A is (M x K) with row stride lda,
// or if `kTransposed` the transpose of a stored (K x M) one, which spares transposing it.
// Columns in blocks of two V vectors, the rest of them in blocks of two eight-float
// vectors, the last few one by one.
template <typename V, bool kTransposed = false>
inline __attribute__((always_inline)) void gemm(
    int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
    const float* B, int64_t ldb, float* C, int64_t ldc) {
  int64_t n = 0;
  for (; n + 2 * Block<V>::kLanes <= N; n += 2 * Block<V>::kLanes)
    gemm_columns<V, kTransposed>(M, n, K, alpha, A, lda, B, ldb, C, ldc);
  for (; n + 2 * Block<v8>::kLanes <= N; n += 2 * Block<v8>::kLanes)
    gemm_columns<v8, kTransposed>(M, n, K, alpha, A, lda, B, ldb, C, ldc);
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = n; j < N; ++j) {
      float sum = 0.f;
      for (int64_t k = 0; k < K; ++k) sum += at<kTransposed>(A, lda, i, k) * B[k * ldb + j];
      C[i * ldc + j] = alpha * sum;
    }
  }
}

// ---- one (sequence, head) pair ----

// Per-thread scratch: one pair's scaled Q, K, V and dO (seq x dim), K^T and V^T (dim x seq),
// and two (seq x seq) tiles. Copying the pair's rows out of the projection costs little and
// spares the products strided reads that touch a new memory page at every row. A bfloat16
// call's results go through float32 tiles, `dout` in the forward and `kt` in the backward
// (which uses neither otherwise).
struct Scratch {
  std::vector<float> q, k, v, dout, kt, vt, tile1, tile2;
  explicit Scratch(const Problem& p)
      : q(p.seq * p.dim), k(q.size()), v(q.size()), dout(q.size()), kt(q.size()),
        vt(q.size()), tile1(p.seq * p.seq), tile2(tile1.size()) {}
};

// Where pair `task` = b * heads + h starts in the interleaved projection
template <typename T>
inline const T* qkv_of(const Problem& p, const T* qkv, int64_t task) {
  const int64_t b = task / p.heads, h = task % p.heads;
  return qkv + p.first_row(b) * p.heads * 3 * p.dim + h * 3 * p.dim;
}

// What each pass reads of a pair besides scale * Q, K and V: the forward K^T, the backward V^T
enum Pass { kForward, kBackward };

// Copy one pair's scale * Q, K, V and the transpose `pass` needs into scratch, in float32.
// The rows come out of the projection whole (each row of a pair lies a whole token's row
// from the last), the transpose out of scratch, in 8 x 8 blocks.
template <typename T>
inline __attribute__((always_inline)) void gather(const Problem& p, const T* base,
                                                   int64_t S, Pass pass, Scratch* w) {
  const int64_t ld = p.qkv_ld(), D = p.dim;
  float *q = w->q.data(), *k = w->k.data(), *v = w->v.data();
  for (int64_t i = 0; i < S; ++i) {
    const T* row = base + i * ld;
    for (int64_t d = 0; d < D; ++d) q[i * D + d] = to_float(row[d]) * p.scale;
    for (int64_t d = 0; d < D; ++d) k[i * D + d] = to_float(row[D + d]);
    for (int64_t d = 0; d < D; ++d) v[i * D + d] = to_float(row[2 * D + d]);
  }
  const float* from = pass == kForward ? k : v;
  float* to = pass == kForward ? w->kt.data() : w->vt.data();
  for (int64_t i0 = 0; i0 < S; i0 += 8) {
    const int64_t i1 = i0 + 8 < S ? i0 + 8 : S;
    for (int64_t d0 = 0; d0 < D; d0 += 8) {
      const int64_t d1 = d0 + 8 < D ? d0 + 8 : D;
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t d = d0; d < d1; ++d) to[d * S + i] = from[i * D + d];
    }
  }
}

// The mask of row i of pair `task` added to its scores `s` (the mask by value: see drop_row)
inline __attribute__((always_inline)) void add_mask(const Problem& p, const Mask mask,
                                                    int64_t task, int64_t i, float* s) {
  const int64_t S = p.seq;  // packed pairs have no mask: they compute on valid keys only
  if (mask.kind == kLengths) {
    const float length = mask.data[task / p.heads], value = mask.value;
    for (int64_t j = 0; j < S; ++j) s[j] += static_cast<float>(j) >= length ? value : 0.f;
  } else if (mask.kind == kAdditive) {
    const float* m = mask.data + (task * S + i) * S;
    for (int64_t j = 0; j < S; ++j) s[j] += m[j];
  }
}

// Row i of pair `task`: scores in `s` become probabilities
inline __attribute__((always_inline)) void softmax_row(const Problem& p, const Mask mask,
                                                        int64_t task, int64_t i, int64_t S,
                                                        float* s) {
  add_mask(p, mask, task, i, s);
  float top = s[0];
  for (int64_t j = 1; j < S; ++j) top = s[j] > top ? s[j] : top;
  float sum = 0.f;
  for (int64_t j = 0; j < S; ++j) {
    s[j] = std::exp(s[j] - top);
    sum += s[j];
  }
  const float inv = 1.f / sum;
  for (int64_t j = 0; j < S; ++j) s[j] *= inv;
}

// Dropout of the S entries of row i of pair `task`, in place: the mask's offsets count
// (task, i, j) in the padded (seq, seq) tile. The mask comes by value: through a reference,
// the stores to `row` could alias it and no loop would vectorise
inline __attribute__((always_inline)) void drop_row(const Problem& p, const DropoutMask drop,
                                                    int64_t task, int64_t i, int64_t S,
                                                    float* row) {
  const uint64_t start = static_cast<uint64_t>((task * p.seq + i) * p.seq);
  uint32_t low = static_cast<uint32_t>(start), high = static_cast<uint32_t>(start >> 32);
  if (static_cast<uint64_t>(low) + S > (uint64_t{1} << 32)) {  // the row crosses 2^32
    for (int64_t j = 0; j < S; ++j) {
      const uint64_t offset = start + j;
      row[j] = drop.keep(static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32))
                   ? row[j] * drop.scale : 0.f;
    }
    return;
  }
  for (int64_t j = 0; j < S; ++j)
    row[j] = drop.keep(low + static_cast<uint32_t>(j), high) ? row[j] * drop.scale : 0.f;
}

// Where a product whose result belongs in `dst` (rows of `ld` elements) computes: in place
// when the tensor is float32, else in the float32 `tile` (rows of `dim`), which `round_into`
// then rounds into place
inline float* target(float* dst, float* tile) { return dst; }
inline float* target(bf16* dst, float* tile) { return tile; }
inline int64_t target_ld(const float* dst, int64_t ld, int64_t dim) { return ld; }
inline int64_t target_ld(const bf16* dst, int64_t ld, int64_t dim) { return dim; }
inline void round_into(float* dst, int64_t ld, int64_t rows, int64_t dim, const float* tile) {}
inline void round_into(bf16* dst, int64_t ld, int64_t rows, int64_t dim, const float* tile) {
  for (int64_t i = 0; i < rows; ++i) gluonbert::put_all(tile + i * dim, dst + i * ld, dim);
}

// qkv and the output in T (float or bf16)
template <typename T>
struct ForwardArgs {
  Problem p;
  Mask mask;
  DropoutMask drop;
  const T* qkv;
  T* out;
  float* probs;  // (batch * heads, seq, seq), for the backward
};

template <typename V, typename T>
inline __attribute__((always_inline)) void forward_pair(const ForwardArgs<T>& a, Scratch* w,
                                                        int64_t task) {
  const Problem& p = a.p;
  const int64_t S = p.positions(task), Q = p.queries(S), D = p.dim;
  const T* base = qkv_of(p, a.qkv, task);
  gather(p, base, S, kForward, w);
  float* probs = a.probs + task * p.slot_rows() * p.seq;  // a (Q, S) tile in the pair's slot
  gemm<V>(Q, S, D, 1.f, w->q.data(), D, w->kt.data(), S, probs, S);
  for (int64_t i = 0; i < Q; ++i) softmax_row(p, a.mask, task, i, S, probs + i * S);
  const float* weights = probs;
  if (a.drop.active()) {
    float* dropped = w->tile1.data();
    std::memcpy(dropped, probs, sizeof(float) * Q * S);
    for (int64_t i = 0; i < Q; ++i) drop_row(p, a.drop, task, i, S, dropped + i * S);
    weights = dropped;
  }
  const int64_t b = task / p.heads, h = task % p.heads;
  T* out = a.out + p.out_of(b, h);
  float* result = target(out, w->dout.data());
  gemm<V>(Q, D, S, 1.f, weights, S, w->v.data(), D, result, target_ld(out, p.out_ld(), D));
  round_into(out, p.out_ld(), Q, D, result);
}

template <typename T>
struct BackwardArgs {
  ForwardArgs<T> f;  // qkv, mask, the forward's probabilities, the same dropout
  const T* dout;
  T* dqkv;
};

template <typename V, typename T>
inline __attribute__((always_inline)) void backward_pair(const BackwardArgs<T>& a, Scratch* w,
                                                         int64_t task) {
  const Problem& p = a.f.p;
  const int64_t S = p.positions(task), Q = p.queries(S), D = p.dim, ld = p.qkv_ld();
  const T* base = qkv_of(p, a.f.qkv, task);
  gather(p, base, S, kBackward, w);
  const float* probs = a.f.probs + task * p.slot_rows() * p.seq;
  // The dropped probabilities P', whose transpose is the left factor of dV = P'^T . dO
  const float* dropped = probs;
  if (a.f.drop.active()) {
    float* tile = w->tile1.data();
    std::memcpy(tile, probs, sizeof(float) * Q * S);
    for (int64_t i = 0; i < Q; ++i) drop_row(p, a.f.drop, task, i, S, tile + i * S);
    dropped = tile;
  }
  const int64_t b = task / p.heads, h = task % p.heads;
  float* dout = w->dout.data();
  for (int64_t i = 0; i < Q; ++i) {
    const T* row = a.dout + i * p.out_ld() + p.out_of(b, h);
    for (int64_t d = 0; d < D; ++d) dout[i * D + d] = to_float(row[d]);
  }
  T* dq = a.dqkv + (base - a.f.qkv);
  float* tile = w->kt.data();  // K^T is not needed from here on
  float* result = target(dq + 2 * D, tile);
  const int64_t result_ld = target_ld(dq, ld, D);
  gemm<V, true>(S, D, Q, 1.f, dropped, S, dout, D, result, result_ld);
  round_into(dq + 2 * D, ld, S, D, result);
  // dP = dO . V^T through the dropout, then the softmax's backward: dS = P * (dP - <P, dP>)
  float* grad = w->tile2.data();
  gemm<V>(Q, S, D, 1.f, dout, D, w->vt.data(), S, grad, S);
  for (int64_t i = 0; i < Q; ++i) {
    float* g = grad + i * S;
    const float* pr = probs + i * S;
    if (a.f.drop.active()) drop_row(p, a.f.drop, task, i, S, g);
    float dot = 0.f;
    for (int64_t j = 0; j < S; ++j) dot += pr[j] * g[j];
    for (int64_t j = 0; j < S; ++j) g[j] = pr[j] * (g[j] - dot);
  }
  // dQ = scale * dS . K (the positions that do not query get none), dK = dS^T . (scale * Q)
  result = target(dq, tile);
  gemm<V>(Q, D, S, p.scale, grad, S, w->k.data(), D, result, result_ld);
  round_into(dq, ld, Q, D, result);
  for (int64_t i = Q; i < S; ++i) std::memset(dq + i * ld, 0, sizeof(T) * D);
  result = target(dq + D, tile);
  gemm<V, true>(S, D, Q, 1.f, grad, S, w->q.data(), D, result, result_ld);
  round_into(dq + D, ld, S, D, result);
}

// Each pair's work compiled for AVX-512 (sixteen-float vectors), AVX2 + FMA and plain x86-64
// (eight-float ones), picked at run time: target_clones could not ask for FMA beside AVX2,
// nor reach into an OpenMP loop's body
#define ISA_VARIANTS(pair, Args)                                                            \
  template <typename T> __attribute__((target("avx512f,avx512dq,fma"))) void pair##_avx512( \
      const Args<T>& a, Scratch* w, int64_t task) { pair<v16, T>(a, w, task); }            \
  template <typename T> __attribute__((target("avx2,fma"))) void pair##_avx2(              \
      const Args<T>& a, Scratch* w, int64_t task) { pair<v8, T>(a, w, task); }             \
  template <typename T> void pair##_plain(const Args<T>& a, Scratch* w, int64_t task) {   \
    pair<v8, T>(a, w, task);                                                               \
  }                                                                                        \
  template <typename T> void (*pair##_for_this_cpu())(const Args<T>&, Scratch*, int64_t) { \
    __builtin_cpu_init();                                                                  \
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"))          \
      return pair##_avx512<T>;                                                             \
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))                  \
      return pair##_avx2<T>;                                                               \
    return pair##_plain<T>;                                                                \
  }

ISA_VARIANTS(forward_pair, ForwardArgs)
ISA_VARIANTS(backward_pair, BackwardArgs)

// Every (sequence, head) pair, one task each, spread over the OpenMP threads
template <typename Args>
void for_each_pair(const Problem& p, const Args& args,
                   void (*pair)(const Args&, Scratch*, int64_t)) {
  const int64_t tasks = p.batch * p.heads;
#pragma omp parallel
  {
    Scratch scratch(p);
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) pair(args, &scratch, task);
  }
}

// inputs: qkv, flag[, mask[, row map]]
Problem problem_of(const Attrs& attrs, std::vector<MXTensor>* inputs) {
  const MXTensor& qkv = inputs->at(0);
  Problem p;
  p.heads = attrs.heads;
  p.first = attrs.first;
  p.dim = qkv.shape.back() / (3 * attrs.heads);
  p.scale = 1.f / std::sqrt(static_cast<float>(p.dim));
  if (attrs.packed) {
    MXTensor& rows = inputs->at(3);
    p.batch = rows.shape[0];
    p.seq = rows.shape[1];
    p.lengths = inputs->at(2).data<float>();
    p.rows = rows.data<float>();
  } else {
    p.seq = qkv.shape[0];
    p.batch = qkv.shape[1];
  }
  return p;
}

// A packed call's lengths and row map name rows of its `tokens` rows; false (and an error)
// when they do not
bool check_packed(const Problem& p, int64_t tokens) {
  for (int64_t b = 0; b < p.batch; ++b) {
    const float length = p.lengths[b], first = p.rows[b * p.seq];
    if (!(length >= 1 && length <= p.seq && first >= 0 && first + length <= tokens)) {
      MX_ERROR_MSG << "gb_attention: sequence " << b << " has length " << length
                   << " and first row " << first << "; expected a length in [1, " << p.seq
                   << "] and rows inside the " << tokens << " packed tokens";
      return false;
    }
  }
  return true;
}

// Zero the rows (of `width` elements) of `data` that no sequence of a packed call covers
template <typename T>
void zero_uncovered(const Problem& p, int64_t tokens, int64_t width, T* data) {
  std::vector<char> covered(tokens, 0);
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t first = p.first_row(b);
    std::memset(covered.data() + first, 1, static_cast<int64_t>(p.lengths[b]));
  }
  for (int64_t r = 0; r < tokens; ++r)
    if (!covered[r]) std::memset(data + r * width, 0, sizeof(T) * width);
}

// The mask input's kind follows from its shape: (batch,) lengths or (pairs, seq, seq) scores;
// packed pairs need none (each computes on its own length)
Mask mask_of(const Attrs& attrs, std::vector<MXTensor>* inputs) {
  if (!attrs.masked || attrs.packed) return Mask{kNoMask, 0.f, nullptr};
  MXTensor& mask = inputs->at(2);
  return Mask{mask.shape.size() == 1 ? kLengths : kAdditive, attrs.mask_value,
              mask.data<float>()};
}

// inputs: qkv, flag[, mask[, row map]]; outputs: out, the probabilities, the dropout's key;
// qkv and out in T
template <typename T>
MXReturnValue forward_in(const Attrs& at, std::vector<MXTensor>* inputs,
                         std::vector<MXTensor>* outputs, const OpResource& res) {
  ForwardArgs<T> args;
  args.p = problem_of(at, inputs);
  const int64_t tokens = inputs->at(0).shape[0];
  if (at.packed && !check_packed(args.p, tokens)) return MX_FAIL;
  args.mask = mask_of(at, inputs);
  args.drop = gluonbert::draw_mask(at.dropout, gluonbert::training(inputs->at(1)), res,
                                   outputs->at(2).data<float>());
  args.qkv = inputs->at(0).data<T>();
  args.out = outputs->at(0).data<T>();
  args.probs = outputs->at(1).data<float>();
  static const auto pair = forward_pair_for_this_cpu<T>();
  for_each_pair(args.p, args, pair);
  if (at.packed && !at.first) zero_uncovered(args.p, tokens, args.p.out_ld(), args.out);
  return MX_SUCCESS;
}

MXReturnValue attention_forward(const std::unordered_map<std::string, std::string>& attrs,
                                std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                                const OpResource& res) {
  Attrs at;
  parse(attrs, &at);
  return inputs->at(0).dtype == gluonbert::kBfloat16 ? forward_in<bf16>(at, inputs, outputs, res)
                                                     : forward_in<float>(at, inputs, outputs, res);
}

// inputs: the gradients of the three outputs, then the inputs, then the outputs;
// outputs: the gradients of the inputs (zero but for qkv's); qkv, out and theirs in T
template <typename T>
MXReturnValue backward_in(const Attrs& at, std::vector<MXTensor>* inputs,
                          std::vector<MXTensor>* outputs) {
  const int ins = at.packed ? 4 : at.masked ? 3 : 2;
  std::vector<MXTensor> forward_inputs(inputs->begin() + 3, inputs->begin() + 3 + ins);
  BackwardArgs<T> args;
  ForwardArgs<T>& f = args.f;
  f.p = problem_of(at, &forward_inputs);
  f.mask = mask_of(at, &forward_inputs);
  f.drop = gluonbert::saved_mask(at.dropout, gluonbert::training(forward_inputs[1]),
                                 inputs->at(3 + ins + 2).data<float>());
  f.qkv = forward_inputs[0].data<T>();
  f.probs = inputs->at(3 + ins + 1).data<float>();
  args.dout = inputs->at(0).data<T>();
  args.dqkv = outputs->at(0).data<T>();
  static const auto pair = backward_pair_for_this_cpu<T>();
  for_each_pair(f.p, args, pair);
  if (at.packed) zero_uncovered(f.p, forward_inputs[0].shape[0], f.p.qkv_ld(), args.dqkv);
  for (int k = 1; k < ins; ++k) {
    MXTensor& grad = outputs->at(k);
    std::memset(grad.data_ptr, 0,
                gluonbert::element_bytes(grad.dtype) * gluonbert::size_of(grad));
  }
  return MX_SUCCESS;
}

MXReturnValue attention_backward(const std::unordered_map<std::string, std::string>& attrs,
                                 std::vector<MXTensor>* inputs,
                                 std::vector<MXTensor>* outputs, const OpResource& res) {
  Attrs at;
  parse(attrs, &at);
  return inputs->at(3).dtype == gluonbert::kBfloat16 ? backward_in<bf16>(at, inputs, outputs)
                                                     : backward_in<float>(at, inputs, outputs);
}

MXReturnValue attention_attrs(const std::unordered_map<std::string, std::string>& attrs,
                              int* num_in, int* num_out) {
  Attrs at;
  if (!parse(attrs, &at)) return MX_FAIL;
  *num_in = at.packed ? 4 : at.masked ? 3 : 2;
  *num_out = 3;
  return MX_SUCCESS;
}

// qkv float32 or bfloat16, and the output the same; the flag either; the rest float32
MXReturnValue attention_types(const std::unordered_map<std::string, std::string>& attrs,
                              std::vector<int>* in, std::vector<int>* out) {
  auto either = [](int type) { return type == kFloat32 || type == gluonbert::kBfloat16; };
  bool ok = either(in->at(0)) && either(in->at(1));
  for (size_t k = 2; k < in->size(); ++k) ok = ok && in->at(k) == kFloat32;
  if (!ok) {
    MX_ERROR_MSG << "gb_attention: qkv and the flag are float32 or bfloat16, the lengths, "
                    "mask and row map float32";
    return MX_FAIL;
  }
  out->at(0) = in->at(0);
  out->at(1) = out->at(2) = kFloat32;
  return MX_SUCCESS;
}

MXReturnValue attention_shapes(const std::unordered_map<std::string, std::string>& attrs,
                               std::vector<std::vector<unsigned int>>* in,
                               std::vector<std::vector<unsigned int>>* out) {
  Attrs at;
  parse(attrs, &at);
  const auto& qkv = in->at(0);
  if (at.packed) {
    const auto& lengths = in->at(2);
    const auto& rows = in->at(3);
    if (qkv.size() != 2 || qkv[1] % (3 * at.heads) != 0 || rows.size() != 2 ||
        in->at(1) != std::vector<unsigned int>{1} ||
        lengths != std::vector<unsigned int>{rows[0]}) {
      MX_ERROR_MSG << "gb_attention: packed, qkv has shape (tokens, 3 * heads * head_dim), the "
                      "flag (1,), the lengths (batch,) and the row map (batch, seq)";
      return MX_FAIL;
    }
    out->at(0) = {at.first ? rows[0] : qkv[0], qkv[1] / 3};
    out->at(1) = {rows[0] * static_cast<unsigned int>(at.heads), at.first ? 1 : rows[1], rows[1]};
    out->at(2) = {2};
    return MX_SUCCESS;
  }
  if (qkv.size() != 3 || qkv[2] % (3 * at.heads) != 0) {
    MX_ERROR_MSG << "gb_attention: qkv must have shape (seq, batch, 3 * heads * head_dim)";
    return MX_FAIL;
  }
  if (in->at(1) != std::vector<unsigned int>{1}) {
    MX_ERROR_MSG << "gb_attention: the flag must have shape (1,)";
    return MX_FAIL;
  }
  const unsigned int seq = qkv[0], batch = qkv[1], pairs = batch * at.heads;
  if (at.masked && in->at(2) != std::vector<unsigned int>{batch} &&
      in->at(2) != std::vector<unsigned int>{pairs, seq, seq}) {
    MX_ERROR_MSG << "gb_attention: a lengths mask has shape (batch,), an additive one "
                    "(batch * heads, seq, seq)";
    return MX_FAIL;
  }
  out->at(0) = at.first ? std::vector<unsigned int>{batch, qkv[2] / 3}
                        : std::vector<unsigned int>{seq, batch, qkv[2] / 3};
  out->at(1) = {pairs, at.first ? 1 : seq, seq};
  out->at(2) = {2};
  return MX_SUCCESS;
}

}  // namespace

REGISTER_OP(gb_attention)
.setForward(attention_forward, "cpu")
.setBackward(attention_backward, "cpu")
.setParseAttrs(attention_attrs)
.setInferType(attention_types)
.setInferShape(attention_shapes);
