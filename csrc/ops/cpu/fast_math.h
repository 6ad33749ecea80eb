// Branch-free float32 log and exp that GCC and Clang vectorise inside plain loops (std::log and
// std::exp are library calls, which keep a loop scalar). Accuracy about 1-2 ulp for the inputs
// the callers pass: finite, normal, positive x for fast_log; finite x <= 0 for fast_exp (results
// below FLT_MIN flush to 0). Classic range reduction plus minimax polynomials (the Cephes
// coefficients for logf and expf).
#pragma once

#include <bit>
#include <cstdint>

namespace noisyseg::fast_math {

inline float fast_log(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  int32_t e = static_cast<int32_t>(bits >> 23) - 127;
  float m = std::bit_cast<float>((bits & 0x007fffffu) | 0x3f800000u);  // mantissa in [1, 2)
  // Centre the mantissa on 1: m in [sqrt(1/2), sqrt(2)).
  const bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1 : e;
  const float f = m - 1.0f;
  const float z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  const float fe = static_cast<float>(e);
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  return f + y + 0.693359375f * fe;
}

inline float fast_exp(float x) {
  x = x < -87.3f ? -87.3f : x;  // below this exp(x) < FLT_MIN: flushed to 0 at the end
  const bool tiny = x <= -87.3f;
  // n = round(x / ln 2); x <= 0, so truncating the positive 0.5 - x / ln 2 rounds (and int
  // conversion vectorises on plain SSE2, where floor needs SSE4.1).
  const float n = -static_cast<float>(static_cast<int32_t>(0.5f - x * 1.44269504088896341f));
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const float z = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  const int32_t ni = static_cast<int32_t>(n);
  const float scale = std::bit_cast<float>(static_cast<uint32_t>(ni + 127) << 23);
  return tiny ? 0.0f : y * scale;
}

}  // namespace noisyseg::fast_math
