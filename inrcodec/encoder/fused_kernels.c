/* The fused SIREN step's two elementwise passes, and the whole step built on them
 * (inr_siren_step, at the end), compiled on first use by encoder/native.py.
 *
 * torch runs them as four passes over each (N, width) activation: the bias copied into the
 * product's output, sin, cos, and in the backward pass g cos(a) and its column sums. Here each is
 * one pass, 16 lanes with AVX-512 and 8 with AVX2 (and FMA), chosen at run time. Row-major
 * float32 arrays, n rows of w columns, no aliasing.
 *
 * Sine and cosine of one argument share one range reduction: x = q pi/2 + r (q the nearest
 * integer to x 2/pi, r by three fused multiply-adds with pi/2 split in three floats, exact to a
 * few units in the last place of r for |x| up to SINCOS_LIMIT), then Cephes' minimax polynomials
 * of sin r and cos r on [-pi/4, pi/4], swapped and negated by the quadrant q mod 4: two
 * polynomials where two calls of a vector sin and cos (glibc's libmvec) reduce twice. A vector
 * with a lane beyond SINCOS_LIMIT (never seen in a fit: a SIREN's arguments stay within a few
 * hundred) goes to libmvec's sinf and cosf, which reduce any float exactly.
 *
 * The passes run over each block of 16 rows as one flat run of 16 w floats, whose bias pattern
 * repeats every w and whose length is a multiple of 16: only the last block can end in a partial
 * vector, where a row-by-row loop would end every row of a width-40 layer in a masked half vector.
 *
 * inr_level() says which path runs: 512, 256, or 0 (neither instruction set: the loader refuses
 * the kernels, which would only be slower than torch's).
 */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>

#define ROWS 16     /* rows of one flat run: 16 w floats, a whole number of vectors of either path */
#define BLOCK 256   /* rows whose products are summed in float before the double column sums */
#define SINCOS_LIMIT 8192.0f

/* pi/2 = PIO2_1 + PIO2_2 + PIO2_3, the first with seven trailing zero bits */
#define PIO2_1 1.57079601287841796875f
#define PIO2_2 3.1391647326017846353e-07f
#define PIO2_3 5.3903029534742383927e-15f
/* Cephes' sinf and cosf on [-pi/4, pi/4]: sin r = r + r^3 (S1 + r^2 (S2 + r^2 S3)),
 * cos r = 1 - r^2/2 + r^4 (C1 + r^2 (C2 + r^2 C3)) */
#define S1 -1.6666654611e-1f
#define S2 8.3321608736e-3f
#define S3 -1.9515295891e-4f
#define C1 4.166664568298827e-2f
#define C2 -1.388731625493765e-3f
#define C3 2.443315711809948e-5f

__attribute__((target("avx512f"))) __m512 _ZGVeN16v_sinf(__m512);
__attribute__((target("avx512f"))) __m512 _ZGVeN16v_cosf(__m512);
__attribute__((target("avx2"))) __m256 _ZGVdN8v_sinf(__m256);
__attribute__((target("avx2"))) __m256 _ZGVdN8v_cosf(__m256);

int inr_level(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return 512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 256;
  return 0;
}

__attribute__((target("avx512f"))) static inline void sincos16(__m512 x, __m512 *s, __m512 *c) {
  if (_mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(SINCOS_LIMIT), _CMP_GT_OQ)) {
    *s = _ZGVeN16v_sinf(x);
    *c = _ZGVeN16v_cosf(x);
    return;
  }
  __m512 qf = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.636619772367581343f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(qf, _mm512_set1_ps(PIO2_1), x);
  r = _mm512_fnmadd_ps(qf, _mm512_set1_ps(PIO2_2), r);
  r = _mm512_fnmadd_ps(qf, _mm512_set1_ps(PIO2_3), r);
  __m512i q = _mm512_cvtps_epi32(qf);
  __m512 r2 = _mm512_mul_ps(r, r);
  __m512 ps = _mm512_fmadd_ps(r2, _mm512_set1_ps(S3), _mm512_set1_ps(S2));
  ps = _mm512_fmadd_ps(r2, ps, _mm512_set1_ps(S1));
  ps = _mm512_fmadd_ps(_mm512_mul_ps(r2, r), ps, r);
  __m512 pc = _mm512_fmadd_ps(r2, _mm512_set1_ps(C3), _mm512_set1_ps(C2));
  pc = _mm512_fmadd_ps(r2, pc, _mm512_set1_ps(C1));
  pc = _mm512_fmadd_ps(_mm512_mul_ps(r2, r2), pc, _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), r2, _mm512_set1_ps(1.0f)));
  __mmask16 odd = _mm512_test_epi32_mask(q, _mm512_set1_epi32(1)); /* quadrants 1, 3: sin and cos swap */
  __m512i sin_sign = _mm512_slli_epi32(_mm512_and_si512(q, _mm512_set1_epi32(2)), 30); /* 2, 3 */
  __m512i cos_sign = _mm512_slli_epi32(_mm512_and_si512(_mm512_add_epi32(q, _mm512_set1_epi32(1)),
                                                        _mm512_set1_epi32(2)), 30); /* 1, 2 */
  *s = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_mask_blend_ps(odd, ps, pc)), sin_sign));
  *c = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_mask_blend_ps(odd, pc, ps)), cos_sign));
}

__attribute__((target("avx2,fma"))) static inline void sincos8(__m256 x, __m256 *s, __m256 *c) {
  __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  if (_mm256_movemask_ps(_mm256_cmp_ps(ax, _mm256_set1_ps(SINCOS_LIMIT), _CMP_GT_OQ))) {
    *s = _ZGVdN8v_sinf(x);
    *c = _ZGVdN8v_cosf(x);
    return;
  }
  __m256 qf = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.636619772367581343f)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(qf, _mm256_set1_ps(PIO2_1), x);
  r = _mm256_fnmadd_ps(qf, _mm256_set1_ps(PIO2_2), r);
  r = _mm256_fnmadd_ps(qf, _mm256_set1_ps(PIO2_3), r);
  __m256i q = _mm256_cvtps_epi32(qf);
  __m256 r2 = _mm256_mul_ps(r, r);
  __m256 ps = _mm256_fmadd_ps(r2, _mm256_set1_ps(S3), _mm256_set1_ps(S2));
  ps = _mm256_fmadd_ps(r2, ps, _mm256_set1_ps(S1));
  ps = _mm256_fmadd_ps(_mm256_mul_ps(r2, r), ps, r);
  __m256 pc = _mm256_fmadd_ps(r2, _mm256_set1_ps(C3), _mm256_set1_ps(C2));
  pc = _mm256_fmadd_ps(r2, pc, _mm256_set1_ps(C1));
  pc = _mm256_fmadd_ps(_mm256_mul_ps(r2, r2), pc, _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), r2, _mm256_set1_ps(1.0f)));
  __m256i one = _mm256_set1_epi32(1), two = _mm256_set1_epi32(2);
  __m256 odd = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(q, one), one));
  __m256i sin_sign = _mm256_slli_epi32(_mm256_and_si256(q, two), 30);
  __m256i cos_sign = _mm256_slli_epi32(_mm256_and_si256(_mm256_add_epi32(q, one), two), 30);
  *s = _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(_mm256_blendv_ps(ps, pc, odd)), sin_sign));
  *c = _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(_mm256_blendv_ps(pc, ps, odd)), cos_sign));
}

/* a = z + b (b broadcast over rows); s = sin(a); z = cos(a) (over z). tile: b repeated ROWS times. */
__attribute__((target("avx512f"))) static void bias_sincos_512(float *restrict z, const float *restrict tile,
                                                               float *restrict s, long n, long w) {
  long total = n * w, run = ROWS * w;
  for (long start = 0; start < total; start += run) {
    long len = total - start < run ? total - start : run;
    float *zr = z + start, *sr = s + start;
    __m512 sv, cv;
    long j = 0;
    for (; j + 16 <= len; j += 16) {
      sincos16(_mm512_add_ps(_mm512_loadu_ps(zr + j), _mm512_loadu_ps(tile + j)), &sv, &cv);
      _mm512_storeu_ps(sr + j, sv);
      _mm512_storeu_ps(zr + j, cv);
    }
    if (j < len) {
      __mmask16 tail = (__mmask16)((1u << (len - j)) - 1u);
      sincos16(_mm512_add_ps(_mm512_maskz_loadu_ps(tail, zr + j), _mm512_maskz_loadu_ps(tail, tile + j)), &sv, &cv);
      _mm512_mask_storeu_ps(sr + j, tail, sv);
      _mm512_mask_storeu_ps(zr + j, tail, cv);
    }
  }
}

__attribute__((target("avx2,fma"))) static void bias_sincos_256(float *restrict z, const float *restrict tile,
                                                                float *restrict s, long n, long w) {
  long total = n * w, run = ROWS * w;
  for (long start = 0; start < total; start += run) {
    long len = total - start < run ? total - start : run;
    float *zr = z + start, *sr = s + start;
    __m256 sv, cv;
    long j = 0;
    for (; j + 8 <= len; j += 8) {
      sincos8(_mm256_add_ps(_mm256_loadu_ps(zr + j), _mm256_loadu_ps(tile + j)), &sv, &cv);
      _mm256_storeu_ps(sr + j, sv);
      _mm256_storeu_ps(zr + j, cv);
    }
    if (j < len) {
      int lanes[8];
      for (int k = 0; k < 8; k++) lanes[k] = k < len - j ? -1 : 0;
      __m256i tail = _mm256_loadu_si256((const __m256i *)lanes);
      sincos8(_mm256_add_ps(_mm256_maskload_ps(zr + j, tail), _mm256_maskload_ps(tile + j, tail)), &sv, &cv);
      _mm256_maskstore_ps(sr + j, tail, sv);
      _mm256_maskstore_ps(zr + j, tail, cv);
    }
  }
}

/* t = c g scale (over c; scale 1 is exact); db = the column sums of t, in double: each of the ROWS w positions of a run
 * summed in float over a block of BLOCK rows (BLOCK / ROWS terms), those sums added in double.
 * acc: ROWS w floats of scratch. */
#define MUL_COLSUM_BODY                                                   \
  long total = n * w, run = ROWS * w, block = BLOCK * w;                  \
  for (long j = 0; j < w; j++) db[j] = 0.0;                               \
  for (long b0 = 0; b0 < total; b0 += block) {                            \
    long b1 = b0 + block < total ? b0 + block : total;                    \
    for (long k = 0; k < run; k++) acc[k] = 0.0f;                         \
    for (long start = b0; start < b1; start += run) {                     \
      long len = b1 - start < run ? b1 - start : run;                     \
      float *cr = c + start;                                              \
      const float *gr = g + start;                                        \
      for (long k = 0; k < len; k++) {                                    \
        float t = cr[k] * gr[k] * scale;                                  \
        cr[k] = t;                                                        \
        acc[k] += t;                                                      \
      }                                                                   \
    }                                                                     \
    for (long r = 0; r < ROWS; r++)                                       \
      for (long j = 0; j < w; j++) db[j] += (double)acc[r * w + j];       \
  }

__attribute__((target("avx512f"))) static void mul_colsum_512(float *restrict c, const float *restrict g,
                                                              double *restrict db, float *restrict acc, long n,
                                                              long w, float scale) {
  MUL_COLSUM_BODY
}

__attribute__((target("avx2,fma"))) static void mul_colsum_256(float *restrict c, const float *restrict g,
                                                               double *restrict db, float *restrict acc, long n,
                                                               long w, float scale) {
  MUL_COLSUM_BODY
}

/* scale b, repeated ROWS times: the bias of one flat run */
static void bias_tile(float *tile, const float *b, long w, float scale) {
  for (long r = 0; r < ROWS; r++)
    for (long j = 0; j < w; j++) tile[r * w + j] = scale * b[j];
}

/* Both return 0, or -1 when the scratch row (ROWS w floats) cannot be allocated. */
int inr_bias_sincos(int level, float *z, const float *b, float *s, long n, long w) {
  float *tile = malloc(sizeof(float) * ROWS * w);
  if (!tile) return -1;
  bias_tile(tile, b, w, 1.0f);
  if (level == 512) bias_sincos_512(z, tile, s, n, w);
  else bias_sincos_256(z, tile, s, n, w);
  free(tile);
  return 0;
}

int inr_mul_colsum(int level, float *c, const float *g, double *db, long n, long w) {
  float *acc = malloc(sizeof(float) * ROWS * w);
  if (!acc) return -1;
  if (level == 512) mul_colsum_512(c, g, db, acc, n, w, 1.0f);
  else mul_colsum_256(c, g, db, acc, n, w, 1.0f);
  free(acc);
  return 0;
}

/* --- a whole training step ------------------------------------------------------------------
 *
 * The SIREN's forward pass, its mean squared error and every gradient in one call, the products
 * through the BLAS sgemm the caller passes (torch's own MKL, found by encoder/native.py), so a
 * step costs one call from Python instead of some forty small operations (docs/performance.md).
 * Row-major float32; BLAS is column-major, so a row-major (rows x cols) array is its
 * (cols x rows) transpose and each product below is written for that. The same function as
 * encoder/fused.py's, with omega applied as the product's alpha and folded into t = omega c g in
 * the backward pass (so dW = t^T h, db = sum t, g' = t W), hence other rounding.
 */
typedef void (*sgemm_t)(const char *, const char *, const int *, const int *, const int *, const float *,
                        const float *, const int *, const float *, const int *, const float *, float *,
                        const int *);

static void gemm(sgemm_t f, char ta, char tb, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float *c, int ldc) {
  const float beta = 0.0f;
  f(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}

/* layers: the number of linear layers (layers - 1 sine layers, then the linear output);
 * dims[0..layers]: widths from the input features to the colours. x: n rows of dims[0] features,
 * row stride ldx; y: n rows of dims[layers] colours, row stride ldy; pixel_w: n loss weights or
 * NULL (a plain mean). w[i] (dims[i+1] x dims[i]), b[i]: the layers; dw[i], db[i]: their
 * gradients, written. s[i], c[i]: n x dims[i+1] buffers (activations; arguments, then cosines);
 * g: n x (the widest hidden layer); out: n x dims[layers]; per_pixel: n squared errors (mean over
 * the colours), written. Returns the loss, or -1 when scratch memory cannot be had. */
double inr_siren_step(int level, void *sgemm, long n, int layers, const int *dims, const float *omegas,
                      const float *x, long ldx, const float *y, long ldy, const float *pixel_w, float **w,
                      float **b, float **dw, float **db, float **s, float **c, float *g, float *out,
                      float *per_pixel) {
  sgemm_t f = (sgemm_t)sgemm;
  int widest = 0;
  for (int i = 1; i < layers; i++) widest = dims[i] > widest ? dims[i] : widest;
  float *scratch = malloc(sizeof(float) * ROWS * (widest > 0 ? widest : 1));
  double *sums = malloc(sizeof(double) * (widest > dims[layers] ? widest : dims[layers]));
  if (!scratch || !sums) {
    free(scratch);
    free(sums);
    return -1.0;
  }
  const float *h = x;
  long ldh = ldx;
  for (int i = 0; i < layers - 1; i++) { /* a = omega (h W^T) + omega b; s = sin a; c = cos a */
    int in = dims[i], o = dims[i + 1];
    gemm(f, 'T', 'N', o, (int)n, in, omegas[i], w[i], in, h, (int)ldh, c[i], o);
    bias_tile(scratch, b[i], o, omegas[i]);
    if (level == 512) bias_sincos_512(c[i], scratch, s[i], n, o);
    else bias_sincos_256(c[i], scratch, s[i], n, o);
    h = s[i];
    ldh = o;
  }
  int last = layers - 1, in = dims[last], k = dims[layers];
  gemm(f, 'T', 'N', k, (int)n, in, 1.0f, w[last], in, h, (int)ldh, out, k);
  double total = 0.0;
  for (long r = 0; r < n; r++) { /* the residual, the loss, and its gradient over out */
    float *o = out + r * k;
    const float *yr = y + r * ldy;
    double sq = 0.0;
    for (int j = 0; j < k; j++) {
      o[j] = o[j] + b[last][j] - yr[j];
      sq += (double)o[j] * o[j];
    }
    per_pixel[r] = (float)(sq / k);
    total += pixel_w ? pixel_w[r] * sq : sq;
  }
  double loss = total / ((double)n * k);
  for (int j = 0; j < k; j++) sums[j] = 0.0;
  for (long r = 0; r < n; r++) { /* t = d loss / d out, over out */
    float scale = (float)(2.0 / ((double)n * k)) * (pixel_w ? pixel_w[r] : 1.0f);
    float *o = out + r * k;
    for (int j = 0; j < k; j++) {
      o[j] *= scale;
      sums[j] += o[j];
    }
  }
  for (int j = 0; j < k; j++) db[last][j] = (float)sums[j];
  gemm(f, 'N', 'T', in, k, (int)n, 1.0f, h, (int)ldh, out, k, dw[last], in); /* dW = t^T h */
  if (last > 0) gemm(f, 'N', 'N', in, (int)n, k, 1.0f, w[last], in, out, k, g, in); /* g = t W */
  for (int i = last - 1; i >= 0; i--) {
    int o = dims[i + 1], hin = dims[i];
    const float *hp = i > 0 ? s[i - 1] : x;
    int ldp = i > 0 ? hin : (int)ldx;
    if (level == 512) mul_colsum_512(c[i], g, sums, scratch, n, o, omegas[i]);
    else mul_colsum_256(c[i], g, sums, scratch, n, o, omegas[i]);
    for (int j = 0; j < o; j++) db[i][j] = (float)sums[j];
    gemm(f, 'N', 'T', hin, o, (int)n, 1.0f, hp, ldp, c[i], o, dw[i], hin); /* dW = t^T h */
    if (i > 0) gemm(f, 'N', 'N', hin, (int)n, o, 1.0f, w[i], hin, c[i], o, g, hin); /* g = t W */
  }
  free(scratch);
  free(sums);
  return loss;
}
