// The dropout mask of gluonbert's kernels: a counter-based hash of (key, element offset).
//
// Element i of a tensor is kept when hash(key, i) >= p * 2^32, so the mask is a pure function
// of the key and the offset: the backward recomputes it instead of storing it, every element
// can be drawn in any order by any thread, and a key reproduces the mask exactly. The hash is
// two rounds of Wellons' "lowbias32" mixer (bijective, 5 vector instructions a round).
//
// lib_api passes an operator neither the train/inference flag nor a seed that it could
// repeat in the backward, so each operator takes a one-element `flag` input (1 at inference,
// see gluonbert/model/dropout.py), draws its key from MXNet's seeded CPU random states in the
// forward and returns it as an output, which MXNet hands back to the backward.
#ifndef GLUONBERT_OPS_DROPOUT_MASK_H_
#define GLUONBERT_OPS_DROPOUT_MASK_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>

#include "common.h"
#include "mxnet/lib_api.h"

namespace gluonbert {

inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// Which elements a dropout of rate p keeps, and the scale 1 / (1 - p) of the kept ones
struct DropoutMask {
  uint32_t key0 = 0, key1 = 0;
  uint32_t threshold = 0;  // 0: keep everything (inference, or p == 0)
  float scale = 1.f;

  bool active() const { return threshold != 0; }
  // Offsets count elements from the tensor's start; `high` holds their bits above 32
  bool keep(uint32_t low, uint32_t high) const {
    return mix32(mix32(low ^ key0) + (key1 ^ high)) >= threshold;
  }
};

// The dropout rate in attribute `name`, checked to lie in [0, 1)
inline bool dropout_rate(const std::unordered_map<std::string, std::string>& attrs,
                         const char* name, float* rate) {
  auto it = attrs.find(name);
  *rate = it == attrs.end() ? 0.f : std::stof(it->second);
  return *rate >= 0.f && *rate < 1.f;
}

// Training is signalled by a flag other than 1 (MXNet's Dropout of a one turns it into 0 or 2)
inline bool training(mxnet::ext::MXTensor& flag) { return first_value(flag) != 1.f; }

// The mask of rate p > 0 drawn with `keys`
inline DropoutMask mask_of(float p, const uint32_t keys[2]) {
  DropoutMask mask;
  mask.key0 = keys[0];
  mask.key1 = keys[1];
  const double threshold = std::ceil(static_cast<double>(p) * 4294967296.0);
  mask.threshold = threshold < 1.0 ? 1u : static_cast<uint32_t>(threshold);
  mask.scale = 1.f / (1.f - p);
  return mask;
}

// A new mask for the forward: a fresh key from MXNet's seeded random states when training
// with p > 0 (else a mask that keeps everything), written as raw bits into the two floats of
// `saved_key` for the backward
inline DropoutMask draw_mask(float p, bool train, const mxnet::ext::OpResource& res,
                             float* saved_key) {
  uint32_t keys[2] = {0, 0};
  if (train && p > 0.f) {
    mxnet::ext::mx_cpu_rand_t& rng = res.get_cpu_rand_states()[0];
    keys[0] = static_cast<uint32_t>(rng());
    keys[1] = static_cast<uint32_t>(rng());
  }
  std::memcpy(saved_key, keys, sizeof keys);
  return train && p > 0.f ? mask_of(p, keys) : DropoutMask();
}

// The forward's mask again, in the backward, from the key it saved
inline DropoutMask saved_mask(float p, bool train, const float* saved_key) {
  uint32_t keys[2];
  std::memcpy(keys, saved_key, sizeof keys);
  return train && p > 0.f ? mask_of(p, keys) : DropoutMask();
}

}  // namespace gluonbert

#endif  // GLUONBERT_OPS_DROPOUT_MASK_H_
