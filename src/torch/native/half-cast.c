/*
 * float16 casts for Node, on x86-64 CPUs with AVX2 and F16C: eight elements per step with the
 * CPU's own half → single conversion (exact, as torch widens: a NaN keeps its payload and gains
 * the quiet bit), then for bfloat16 the same round-to-nearest-even on the bits as torch, every
 * NaN to 0x7FC0. src/torch/half-native.ts loads it where it was built and the CPU has both
 * instruction sets (`available` is then true); elsewhere the casts take the lookup tables of
 * src/plan/cast.ts, which give the same bits (the test compares all 65536 codes).
 *
 * f16ToF32(src, out): `src` holds n float16 codes (2n bytes), `out` 4n bytes.
 * f16ToBf16(src, out): `out` 2n bytes. Both Uint8Arrays, any alignment; synchronous.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_KERNEL 1

__attribute__((target("avx2,f16c"))) static inline void widen8(const uint8_t *src, uint8_t *dst) {
  __m256 f = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)src));
  _mm256_storeu_ps((float *)dst, f);
}

__attribute__((target("avx2,f16c"))) static inline void to_bf16_8(const uint8_t *src, uint8_t *dst) {
  __m256i x = _mm256_castps_si256(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)src)));
  __m256i odd = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), odd);
  r = _mm256_srli_epi32(r, 16);
  __m256i mag = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
  __m256i nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7f800000));
  r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7fc0), nan);
  /* Eight 32-bit results below 2^16 → eight 16-bit ones (packus works per 128-bit lane). */
  __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xd8);
  _mm_storeu_si128((__m128i *)dst, _mm256_castsi256_si128(p));
}

/*
 * n codes: whole steps of eight, then the rest through a zeroed eight-code buffer. A macro, so
 * that each loop calls its step inline (through a function pointer it ran 2× slower).
 */
#define CAST_ALL(name, step, out_size)                                                  \
  __attribute__((target("avx2,f16c"))) static void name(const uint8_t *src, uint8_t *dst, \
                                                        size_t n) {                      \
    size_t i = 0;                                                                        \
    for (; i + 8 <= n; i += 8) step(src + 2 * i, dst + (out_size) * i);                  \
    if (i < n) {                                                                         \
      uint8_t in[16] = {0}, out[32];                                                     \
      memcpy(in, src + 2 * i, 2 * (n - i));                                              \
      step(in, out);                                                                     \
      memcpy(dst + (out_size) * i, out, (out_size) * (n - i));                           \
    }                                                                                    \
  }
CAST_ALL(widen_all, widen8, 4)
CAST_ALL(to_bf16_all, to_bf16_8, 2)
#else
#define HAVE_KERNEL 0
#endif

/* Reads (src, out) and checks that out holds `out_size` bytes per code of src. */
static int args(napi_env env, napi_callback_info info, size_t out_size, uint8_t **src,
                uint8_t **dst, size_t *n) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_typedarray_type t0, t1;
  size_t len0, len1, off;
  napi_value ab;
  if (argc != 2 ||
      napi_get_typedarray_info(env, argv[0], &t0, &len0, (void **)src, &ab, &off) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &t1, &len1, (void **)dst, &ab, &off) != napi_ok ||
      t0 != napi_uint8_array || t1 != napi_uint8_array || len0 % 2 != 0 ||
      len1 != len0 / 2 * out_size) {
    napi_throw_type_error(env, NULL, "cast(src, out): Uint8Arrays of 2n and n × itemsize bytes");
    return 0;
  }
  *n = len0 / 2;
  return 1;
}

#if HAVE_KERNEL
static napi_value f16_to_f32(napi_env env, napi_callback_info info) {
  uint8_t *src, *dst;
  size_t n;
  if (args(env, info, 4, &src, &dst, &n)) widen_all(src, dst, n);
  return NULL;
}

static napi_value f16_to_bf16(napi_env env, napi_callback_info info) {
  uint8_t *src, *dst;
  size_t n;
  if (args(env, info, 2, &src, &dst, &n)) to_bf16_all(src, dst, n);
  return NULL;
}
#endif

NAPI_MODULE_INIT() {
  int available = 0;
#if HAVE_KERNEL
  __builtin_cpu_init();
  available = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  if (available) {
    napi_value fn;
    napi_create_function(env, "f16ToF32", NAPI_AUTO_LENGTH, f16_to_f32, NULL, &fn);
    napi_set_named_property(env, exports, "f16ToF32", fn);
    napi_create_function(env, "f16ToBf16", NAPI_AUTO_LENGTH, f16_to_bf16, NULL, &fn);
    napi_set_named_property(env, exports, "f16ToBf16", fn);
  }
#endif
  napi_value flag;
  napi_get_boolean(env, available, &flag);
  napi_set_named_property(env, exports, "available", flag);
  return exports;
}
