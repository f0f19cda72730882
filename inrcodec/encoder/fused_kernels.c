/* The fused SIREN step's two elementwise passes, compiled on first use by encoder/native.py.
 *
 * torch runs them as four passes over each (N, width) activation: the bias copied into the
 * product's output, sin, cos, and in the backward pass g cos(a) and its column sums. Here each is
 * one pass, and sin and cos of a vector come from glibc's vector math library (libmvec, the
 * functions GCC's vectoriser calls for sinf and cosf), 16 lanes with AVX-512 and 8 with AVX2,
 * chosen at run time. Row-major float32 arrays, n rows of w columns, no aliasing.
 *
 * inr_level() says which path runs: 512, 256, or 0 (neither instruction set: the loader refuses
 * the kernels, which would only be slower than torch's).
 */
#include <immintrin.h>
#include <math.h>

#define BLOCK 64 /* rows summed in float before the double column sums */

__attribute__((target("avx512f"))) __m512 _ZGVeN16v_sinf(__m512);
__attribute__((target("avx512f"))) __m512 _ZGVeN16v_cosf(__m512);
__attribute__((target("avx2"))) __m256 _ZGVdN8v_sinf(__m256);
__attribute__((target("avx2"))) __m256 _ZGVdN8v_cosf(__m256);

int inr_level(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return 512;
  if (__builtin_cpu_supports("avx2")) return 256;
  return 0;
}

/* a = z + b (b broadcast over rows); s = sin(a); z = cos(a) (over z) */
__attribute__((target("avx512f"))) static void bias_sincos_512(float *restrict z, const float *restrict b,
                                                               float *restrict s, long n, long w) {
  __mmask16 tail = (__mmask16)((1u << (w % 16)) - 1u);
  for (long i = 0; i < n; i++) {
    float *zr = z + i * w, *sr = s + i * w;
    long j = 0;
    for (; j + 16 <= w; j += 16) {
      __m512 a = _mm512_add_ps(_mm512_loadu_ps(zr + j), _mm512_loadu_ps(b + j));
      _mm512_storeu_ps(sr + j, _ZGVeN16v_sinf(a));
      _mm512_storeu_ps(zr + j, _ZGVeN16v_cosf(a));
    }
    if (tail) {
      __m512 a = _mm512_add_ps(_mm512_maskz_loadu_ps(tail, zr + j), _mm512_maskz_loadu_ps(tail, b + j));
      _mm512_mask_storeu_ps(sr + j, tail, _ZGVeN16v_sinf(a));
      _mm512_mask_storeu_ps(zr + j, tail, _ZGVeN16v_cosf(a));
    }
  }
}

__attribute__((target("avx2"))) static void bias_sincos_256(float *restrict z, const float *restrict b,
                                                            float *restrict s, long n, long w) {
  int lanes[8];
  for (int k = 0; k < 8; k++) lanes[k] = k < w % 8 ? -1 : 0;
  __m256i tail = _mm256_loadu_si256((const __m256i *)lanes);
  for (long i = 0; i < n; i++) {
    float *zr = z + i * w, *sr = s + i * w;
    long j = 0;
    for (; j + 8 <= w; j += 8) {
      __m256 a = _mm256_add_ps(_mm256_loadu_ps(zr + j), _mm256_loadu_ps(b + j));
      _mm256_storeu_ps(sr + j, _ZGVdN8v_sinf(a));
      _mm256_storeu_ps(zr + j, _ZGVdN8v_cosf(a));
    }
    if (w % 8) {
      __m256 a = _mm256_add_ps(_mm256_maskload_ps(zr + j, tail), _mm256_maskload_ps(b + j, tail));
      _mm256_maskstore_ps(sr + j, tail, _ZGVdN8v_sinf(a));
      _mm256_maskstore_ps(zr + j, tail, _ZGVdN8v_cosf(a));
    }
  }
}

/* t = c g (over c); db = the column sums of t, in double (each block of rows summed in float) */
#define MUL_COLSUM_BODY                                          \
  float acc[w];                                                  \
  for (long j = 0; j < w; j++) db[j] = 0.0;                      \
  for (long i0 = 0; i0 < n; i0 += BLOCK) {                       \
    long i1 = i0 + BLOCK < n ? i0 + BLOCK : n;                   \
    for (long j = 0; j < w; j++) acc[j] = 0.0f;                  \
    for (long i = i0; i < i1; i++) {                             \
      float *cr = c + i * w;                                     \
      const float *gr = g + i * w;                               \
      for (long j = 0; j < w; j++) {                             \
        float t = cr[j] * gr[j];                                 \
        cr[j] = t;                                               \
        acc[j] += t;                                             \
      }                                                          \
    }                                                            \
    for (long j = 0; j < w; j++) db[j] += acc[j];                \
  }

__attribute__((target("avx512f"))) static void mul_colsum_512(float *restrict c, const float *restrict g,
                                                              double *restrict db, long n, long w) {
  MUL_COLSUM_BODY
}

__attribute__((target("avx2"))) static void mul_colsum_256(float *restrict c, const float *restrict g,
                                                           double *restrict db, long n, long w) {
  MUL_COLSUM_BODY
}

void inr_bias_sincos(int level, float *z, const float *b, float *s, long n, long w) {
  if (level == 512) bias_sincos_512(z, b, s, n, w);
  else bias_sincos_256(z, b, s, n, w);
}

void inr_mul_colsum(int level, float *c, const float *g, double *db, long n, long w) {
  if (level == 512) mul_colsum_512(c, g, db, n, w);
  else mul_colsum_256(c, g, db, n, w);
}
