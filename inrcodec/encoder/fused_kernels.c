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

/* 1 when built with OpenMP (the whole step's chunks can run at once), else 0 */
int inr_openmp(void) {
#ifdef _OPENMP
  return 1;
#else
  return 0;
#endif
}

/* One step's arrays (see inr_siren_step); a chunk of rows reads and writes its own rows of them. */
typedef struct {
  int level;
  sgemm_t f;
  long n;       /* the whole batch's rows: the loss is their mean */
  long widest;  /* the widest hidden layer: a chunk's rows of g take that many floats each */
  int layers;
  const int *dims;
  const float *omegas;
  const float *x, *y, *pixel_w;
  long ldx, ldy;
  float **w, **b, **s, **c;
  float *g, *out, *per_pixel;
} step_t;

/* Rows [r0, r1) of the step: their forward pass and errors, and their share of every gradient,
 * written into dw[i] (float, a product's sum over these rows) and db[i] (double column sums).
 * Returns their (weighted) sum of squared errors. scratch: ROWS x the widest hidden layer. */
static double step_rows(const step_t *p, long r0, long r1, float **dw, double **db, float *scratch) {
  const int *dims = p->dims;
  const int layers = p->layers, m = (int)(r1 - r0);
  const float *h = p->x + r0 * p->ldx;
  long ldh = p->ldx;
  for (int i = 0; i < layers - 1; i++) { /* a = omega (h W^T) + omega b; s = sin a; c = cos a */
    int in = dims[i], o = dims[i + 1];
    float *ci = p->c[i] + r0 * o, *si = p->s[i] + r0 * o;
    gemm(p->f, 'T', 'N', o, m, in, p->omegas[i], p->w[i], in, h, (int)ldh, ci, o);
    bias_tile(scratch, p->b[i], o, p->omegas[i]);
    if (p->level == 512) bias_sincos_512(ci, scratch, si, m, o);
    else bias_sincos_256(ci, scratch, si, m, o);
    h = si;
    ldh = o;
  }
  int last = layers - 1, in = dims[last], k = dims[layers];
  float *out = p->out + r0 * k;
  gemm(p->f, 'T', 'N', k, m, in, 1.0f, p->w[last], in, h, (int)ldh, out, k);
  double total = 0.0;
  double *sums = db[last];
  for (int j = 0; j < k; j++) sums[j] = 0.0;
  for (long r = 0; r < m; r++) { /* the residual, the loss, and its gradient t over out */
    float *o = out + r * k;
    const float *yr = p->y + (r0 + r) * p->ldy;
    double sq = 0.0;
    for (int j = 0; j < k; j++) {
      o[j] = o[j] + p->b[last][j] - yr[j];
      sq += (double)o[j] * o[j];
    }
    p->per_pixel[r0 + r] = (float)(sq / k);
    total += p->pixel_w ? p->pixel_w[r0 + r] * sq : sq;
  }
  for (long r = 0; r < m; r++) {
    float scale = (float)(2.0 / ((double)p->n * k)) * (p->pixel_w ? p->pixel_w[r0 + r] : 1.0f);
    float *o = out + r * k;
    for (int j = 0; j < k; j++) {
      o[j] *= scale;
      sums[j] += o[j];
    }
  }
  gemm(p->f, 'N', 'T', in, k, m, 1.0f, h, (int)ldh, out, k, dw[last], in); /* dW = t^T h */
  /* the chunk's own region of g, rows packed at each layer's width inside it: a chunk on another
   * layer (another width) never reaches into it */
  float *g = p->g + r0 * p->widest;
  if (last > 0) gemm(p->f, 'N', 'N', in, m, k, 1.0f, p->w[last], in, out, k, g, in); /* g = t W */
  for (int i = last - 1; i >= 0; i--) {
    int o = dims[i + 1], hin = dims[i];
    const float *hp = i > 0 ? p->s[i - 1] + r0 * hin : p->x + r0 * p->ldx;
    int ldp = i > 0 ? hin : (int)p->ldx;
    float *ci = p->c[i] + r0 * o;
    if (p->level == 512) mul_colsum_512(ci, g, db[i], scratch, m, o, p->omegas[i]);
    else mul_colsum_256(ci, g, db[i], scratch, m, o, p->omegas[i]);
    gemm(p->f, 'N', 'T', hin, o, m, 1.0f, hp, ldp, ci, o, dw[i], hin); /* dW = t^T h */
    if (i > 0) gemm(p->f, 'N', 'N', hin, m, o, 1.0f, p->w[i], hin, ci, o, g, hin); /* g = t W */
  }
  return total;
}

/* layers: the number of linear layers (layers - 1 sine layers, then the linear output);
 * dims[0..layers]: widths from the input features to the colours. x: n rows of dims[0] features,
 * row stride ldx; y: n rows of dims[layers] colours, row stride ldy; pixel_w: n loss weights or
 * NULL (a plain mean). w[i] (dims[i+1] x dims[i]), b[i]: the layers; dw[i], db[i]: their
 * gradients, written. s[i], c[i]: n x dims[i+1] buffers (activations; arguments, then cosines);
 * g: n x (the widest hidden layer); out: n x dims[layers]; per_pixel: n squared errors (mean over
 * the colours), written. threads: how many chunks of rows run at once, on OpenMP's threads (the
 * caller's torch thread count; the same runtime as torch's, so its waiting threads do the work):
 * each chunk's products run on one thread, their gradients are summed in chunk order, so a
 * thread count gives the same bits every run; one thread runs the rows as one chunk, with the
 * products on the BLAS's own threads. Returns the loss, or -1 when scratch memory cannot be had. */
double inr_siren_step(int level, void *sgemm, long n, int layers, const int *dims, const float *omegas,
                      const float *x, long ldx, const float *y, long ldy, const float *pixel_w, float **w,
                      float **b, float **dw, float **db, float **s, float **c, float *g, float *out,
                      float *per_pixel, int threads) {
  int widest = 1, chunks = threads < 1 ? 1 : threads;
  for (int i = 1; i < layers; i++) widest = dims[i] > widest ? dims[i] : widest;
  step_t p = {level, (sgemm_t)sgemm, n, widest, layers, dims, omegas, x, y, pixel_w, ldx, ldy, w, b, s, c, g, out, per_pixel};
  if (chunks > n / (4 * ROWS)) chunks = n / (4 * ROWS) > 1 ? (int)(n / (4 * ROWS)) : 1; /* a chunk: 64 rows or more */
  long params = 0, units = 0;
  for (int i = 0; i < layers; i++) {
    params += (long)dims[i + 1] * dims[i];
    units += dims[i + 1];
  }
  float *scratch = malloc(sizeof(float) * ROWS * widest * chunks);
  double *sums = malloc(sizeof(double) * units * chunks);
  float *extra = chunks > 1 ? malloc(sizeof(float) * params * (chunks - 1)) : NULL;
  float **dwp = malloc(sizeof(float *) * layers * chunks);
  double **dbp = malloc(sizeof(double *) * layers * chunks);
  double *totals = malloc(sizeof(double) * chunks);
  if (!scratch || !sums || (chunks > 1 && !extra) || !dwp || !dbp || !totals) {
    free(scratch), free(sums), free(extra), free(dwp), free(dbp), free(totals);
    return -1.0;
  }
  for (int t = 0; t < chunks; t++) { /* chunk 0 writes dW in place; the others into extra */
    float *at = t > 0 ? extra + (t - 1) * params : NULL;
    double *st = sums + t * units;
    for (int i = 0; i < layers; i++) {
      dwp[t * layers + i] = t > 0 ? at : dw[i];
      if (t > 0) at += (long)dims[i + 1] * dims[i];
      dbp[t * layers + i] = st;
      st += dims[i + 1];
    }
  }
  if (chunks == 1) {
    totals[0] = step_rows(&p, 0, n, dwp, dbp, scratch);
  } else {
#pragma omp parallel for schedule(static, 1) num_threads(chunks)
    for (int t = 0; t < chunks; t++) {
      long r0 = n * t / chunks / ROWS * ROWS, r1 = t + 1 < chunks ? n * (t + 1) / chunks / ROWS * ROWS : n;
      totals[t] = step_rows(&p, r0, r1, dwp + t * layers, dbp + t * layers, scratch + (long)ROWS * widest * t);
    }
  }
  double total = 0.0;
  for (int t = 0; t < chunks; t++) total += totals[t];
  for (int i = 0; i < layers; i++) {
    long size = (long)dims[i + 1] * dims[i];
    for (int t = 1; t < chunks; t++) {
      const float *part = dwp[t * layers + i];
      for (long e = 0; e < size; e++) dw[i][e] += part[e];
    }
    for (int j = 0; j < dims[i + 1]; j++) {
      double sum = 0.0;
      for (int t = 0; t < chunks; t++) sum += dbp[t * layers + i][j];
      db[i][j] = (float)sum;
    }
  }
  free(scratch), free(sums), free(extra), free(dwp), free(dbp), free(totals);
  return total / ((double)n * dims[layers]);
}
