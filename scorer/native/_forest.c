/* Tree ensembles scored many rows at a time without a branch per node (the in-process
 * engine ``vectorized``: scorer/inference/vectorized.py turns an ONNX TreeEnsemble into the
 * arrays this module takes).
 *
 * QuickScorer (Lucchese et al., SIGIR 2015): a tree's leaves are numbered left to right (the
 * true child first) and a row starts with every leaf possible, one bit each. Every test node
 * whose test is false for the row rules out the leaves of its true subtree (an AND with the
 * node's mask); the row's exit leaf is then the lowest bit left. The nodes are visited in any
 * order, so the visit is the same for every row: the tests of 16 rows (AVX-512) or 8 (AVX2)
 * are one vector compare, with no branch that depends on the data. tl2cgen's if-else code
 * (scorer.inference.compiled) takes a data-dependent branch per node: 0.7-1.2 us a row for the
 * shipped models, most of it mispredicted branches.
 *
 * Semantics are ONNX Runtime's TreeEnsembleClassifier (BRANCH_LEQ or BRANCH_LT, the missing
 * value's direction per node): a node's test is true when x <= t (x < t), or when x is NaN and
 * the node sends missing values to its true child. A node's false test is therefore one
 * ordered or unordered compare, by the node's missing direction; the nodes of a tree come in
 * two runs (missing to the false child, then to the true child), one compare predicate each.
 * Leaves are summed in float in tree order, the base value added, the logistic applied, as
 * ONNX Runtime does (the engine checks its scores against ONNX Runtime's at load).
 *
 * At most 32 leaves a tree (a 32-bit word a row): LightGBM's default num_leaves is 31.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_scorebuf.h"

/* As _trees.c: below this many rows the GIL stays held (winning it back may cost the switch
 * interval, more than a pipeline batch's trees). */
#define RELEASE_GIL_ROWS 1024
#define LEAVES 32

enum { BRANCH_LEQ = 0, BRANCH_LT = 1 };
enum { KERNEL_AUTO = -1, KERNEL_SCALAR = 0, KERNEL_AVX2 = 1, KERNEL_AVX512 = 2 };
static const char *KERNEL_NAMES[] = {"scalar", "avx2", "avx512"};

typedef struct {
    PyObject_HEAD
    int32_t n_trees, n_features, n_nodes;
    int32_t mode;      /* BRANCH_LEQ | BRANCH_LT */
    int32_t logistic;  /* 1: the logistic of the margin; 0: the margin */
    float base;
    int32_t *start;    /* [n_trees + 1]: a tree's nodes are [start[t], start[t + 1]) */
    int32_t *split;    /* [n_trees]: from split[t] on, the tree's nodes send missing values to the true child */
    int32_t *feature;  /* [n_nodes] */
    float *threshold;  /* [n_nodes] */
    uint32_t *mask;    /* [n_nodes]: the leaves left when the node's test is false */
    float *leaves;     /* [n_trees * LEAVES] */
    /* For the vector kernels: */
    int32_t n_used;    /* the features some node tests */
    int32_t *used;     /* [n_used]: those features, ascending */
    int32_t *offset;   /* [n_nodes]: the byte offset of the node's feature's column in the kernels' block */
    uint32_t *nmask;   /* [n_nodes]: ~mask (AVX2's and-not) */
    float *scratch;    /* n_used * STRIDE floats, 64-byte aligned: the transposed rows of a call that
                          holds the GIL (one at a time); a call that releases it allocates its own */
} Forest;

static int best_kernel(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd")) return KERNEL_AVX512;
    if (__builtin_cpu_supports("avx2")) return KERNEL_AVX2;
    return KERNEL_SCALAR;
}

static int BEST = KERNEL_SCALAR;

static inline float finish(const Forest *f, float margin) {
    margin += f->base;
    return f->logistic ? 1.0f / (1.0f + expf(-margin)) : margin;
}

/* ------------------------------------------------------------------ scalar: one row at a time */

static void score_scalar(const Forest *f, const float *x, Py_ssize_t n, float *out) {
    const int lt = f->mode == BRANCH_LT;
    for (Py_ssize_t r = 0; r < n; ++r) {
        const float *row = x + r * f->n_features;
        float sum = 0.0f;
        for (int32_t t = 0; t < f->n_trees; ++t) {
            uint32_t w = UINT32_MAX;
            const int32_t split = f->split[t], end = f->start[t + 1];
            for (int32_t k = f->start[t]; k < end; ++k) {
                const float v = row[f->feature[k]], th = f->threshold[k];
                /* false: not (v <= th) [or not (v < th)], and for the second run not missing */
                int false_test = lt ? !(v < th) : !(v <= th);
                if (k >= split) false_test &= !isnan(v);
                if (false_test) w &= f->mask[k];
            }
            sum += f->leaves[(size_t)t * LEAVES + __builtin_ctz(w)];
        }
        out[r] = finish(f, sum);
    }
}

/* ------------------------------------------------------------------ the vector kernels
 *
 * A pass scores up to GROUP blocks of `lanes` rows (8: AVX2, 16: AVX-512) together: a node's
 * threshold and mask are loaded once for all of them, and a batch's few rows of a kind take one
 * pass (a pass per block cost a node's loads and loop again for every 8 or 16 rows, and a
 * 17-row call three passes under AVX2). Only the features the trees test are transposed.
 *
 * The block: block[j * STRIDE + i] is row r0 + i's used feature j, rows past the call's last
 * zero (scored and dropped); one STRIDE for both kernels (AVX2 fills half of each column), so
 * that a node's column is a byte offset made once. */
#define GROUP 4
#define STRIDE (GROUP * 16)

static void transpose(const Forest *f, const float *x, Py_ssize_t r0, int m, int width, float *block) {
    const int32_t k = f->n_features, n_used = f->n_used;
    const int32_t *used = f->used;
    for (int i = 0; i < m; ++i) {
        const float *row = x + (r0 + i) * k;
        float *to = block + i;
        for (int32_t j = 0; j < n_used; ++j) to[(size_t)j * STRIDE] = row[used[j]];
    }
    for (int i = m; i < width; ++i)
        for (int32_t j = 0; j < n_used; ++j) block[(size_t)j * STRIDE + i] = 0.0f;
}

/* transpose() by gathers: a used feature of 8 (16) rows is one masked gather (rows past m read
 * nothing and are zero) and one store; the rows' offsets i * k must fit an int32 (GATHERS). */
#define GATHERS(f) ((int64_t)(f)->n_features * STRIDE <= INT32_MAX)

__attribute__((target("avx2,fma"))) static void transpose_avx2(const Forest *f, const float *x, Py_ssize_t r0,
                                                               int m, int nb, float *block) {
    const int32_t k = f->n_features, n_used = f->n_used;
    const float *first = x + r0 * k;
    __m256i at[GROUP], keep[GROUP];
    for (int b = 0; b < nb; ++b) {
        const __m256i rows = _mm256_add_epi32(_mm256_set1_epi32(8 * b), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        at[b] = _mm256_mullo_epi32(rows, _mm256_set1_epi32(k));
        keep[b] = _mm256_cmpgt_epi32(_mm256_set1_epi32(m), rows);
    }
    for (int32_t j = 0; j < n_used; ++j) {
        const float *column = first + f->used[j];
        float *to = block + (size_t)j * STRIDE;
        for (int b = 0; b < nb; ++b)
            _mm256_store_ps(to + 8 * b, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), column, at[b],
                                                                 _mm256_castsi256_ps(keep[b]), 4));
    }
}

__attribute__((target("avx512f,avx512cd"))) static void transpose_avx512(const Forest *f, const float *x, Py_ssize_t r0,
                                                                         int m, int nb, float *block) {
    const int32_t k = f->n_features, n_used = f->n_used;
    const float *first = x + r0 * k;
    __m512i at[GROUP];
    __mmask16 keep[GROUP];
    for (int b = 0; b < nb; ++b) {
        const int left = m - 16 * b;
        at[b] = _mm512_mullo_epi32(_mm512_add_epi32(_mm512_set1_epi32(16 * b),
                                                    _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
                                   _mm512_set1_epi32(k));
        keep[b] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    }
    for (int32_t j = 0; j < n_used; ++j) {
        const float *column = first + f->used[j];
        float *to = block + (size_t)j * STRIDE;
        for (int b = 0; b < nb; ++b)
            _mm512_store_ps(to + 16 * b, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), keep[b], at[b], column, 4));
    }
}

/* A node's false test on every block, compare operands swapped (the threshold first, so the
 * row's values are read from memory by the compare): not (v <= th) is not (th >= v), and so on. */
#define AVX2_RUN(NB, PRED)                                                                  \
    _Pragma("GCC unroll 2") for (; k < stop; ++k) {                                         \
        const float *col = (const float *)((const char *)block + f->offset[k]);             \
        const __m256 th = _mm256_set1_ps(f->threshold[k]);                                  \
        const __m256i nm = _mm256_set1_epi32((int)f->nmask[k]);                             \
        _Pragma("GCC unroll 4") for (int b = 0; b < NB; ++b) {                              \
            const __m256i no = _mm256_castps_si256(_mm256_cmp_ps(th, _mm256_load_ps(col + 8 * b), PRED)); \
            w[b] = _mm256_andnot_si256(_mm256_and_si256(no, nm), w[b]);                     \
        }                                                                                   \
    }

#define AVX2_KERNEL(NB)                                                                     \
__attribute__((target("avx2,fma"))) static void avx2_##NB(const Forest *f, const float *block, __m256 *sums) { \
    const int lt = f->mode == BRANCH_LT;                                                    \
    __m256 sum[NB];                                                                         \
    _Pragma("GCC unroll 4") for (int b = 0; b < NB; ++b) sum[b] = _mm256_setzero_ps();      \
    for (int32_t t = 0; t < f->n_trees; ++t) {                                              \
        __m256i w[NB];                                                                      \
        _Pragma("GCC unroll 4") for (int b = 0; b < NB; ++b) w[b] = _mm256_set1_epi32(-1);  \
        int32_t k = f->start[t], stop = f->split[t];                                        \
        if (lt) { AVX2_RUN(NB, _CMP_NGT_UQ) } else { AVX2_RUN(NB, _CMP_NGE_UQ) }            \
        stop = f->start[t + 1];                                                             \
        if (lt) { AVX2_RUN(NB, _CMP_LE_OQ) } else { AVX2_RUN(NB, _CMP_LT_OQ) }              \
        const float *leaves = f->leaves + (size_t)t * LEAVES;                               \
        _Pragma("GCC unroll 4") for (int b = 0; b < NB; ++b) {                              \
            /* the lowest bit left, as its float's exponent (w & -w is a power of two) */   \
            const __m256i low = _mm256_and_si256(w[b], _mm256_sub_epi32(_mm256_setzero_si256(), w[b])); \
            const __m256i bits = _mm256_castps_si256(_mm256_cvtepi32_ps(low));              \
            const __m256i leaf = _mm256_sub_epi32(                                          \
                _mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0xff)), _mm256_set1_epi32(127)); \
            sum[b] = _mm256_add_ps(sum[b], _mm256_i32gather_ps(leaves, leaf, 4));           \
        }                                                                                   \
    }                                                                                       \
    _Pragma("GCC unroll 4") for (int b = 0; b < NB; ++b) sums[b] = sum[b];                  \
}

AVX2_KERNEL(1)
AVX2_KERNEL(2)
AVX2_KERNEL(3)
AVX2_KERNEL(4)

#define AVX512_RUN(NB, PRED)                                                                \
    _Pragma("GCC unroll 2") for (; k < stop; ++k) {                                         \
        const float *col = (const float *)((const char *)block + f->offset[k]);             \
        const __m512 th = _mm512_set1_ps(f->threshold[k]);                                  \
        const __m512i m = _mm512_set1_epi32((int)f->mask[k]);                               \
        _Pragma("GCC unroll 4") for (int b = 0; b < NB; ++b) {                              \
            const __mmask16 no = _mm512_cmp_ps_mask(th, _mm512_load_ps(col + 16 * b), PRED); \
            w[b] = _mm512_mask_and_epi32(w[b], no, w[b], m);                                \
        }                                                                                   \
    }

#define AVX512_KERNEL(NB)                                                                   \
__attribute__((target("avx512f,avx512cd"))) static void avx512_##NB(const Forest *f, const float *block, \
                                                                    __m512 *sums) {         \
    const int lt = f->mode == BRANCH_LT;                                                    \
    __m512 sum[NB];                                                                         \
    _Pragma("GCC unroll 4") for (int b = 0; b < NB; ++b) sum[b] = _mm512_setzero_ps();      \
    for (int32_t t = 0; t < f->n_trees; ++t) {                                              \
        __m512i w[NB];                                                                      \
        _Pragma("GCC unroll 4") for (int b = 0; b < NB; ++b) w[b] = _mm512_set1_epi32(-1);  \
        int32_t k = f->start[t], stop = f->split[t];                                        \
        if (lt) { AVX512_RUN(NB, _CMP_NGT_UQ) } else { AVX512_RUN(NB, _CMP_NGE_UQ) }        \
        stop = f->start[t + 1];                                                             \
        if (lt) { AVX512_RUN(NB, _CMP_LE_OQ) } else { AVX512_RUN(NB, _CMP_LT_OQ) }          \
        const float *leaves = f->leaves + (size_t)t * LEAVES;                               \
        const __m512 lo = _mm512_loadu_ps(leaves), hi = _mm512_loadu_ps(leaves + 16);       \
        _Pragma("GCC unroll 4") for (int b = 0; b < NB; ++b) {                              \
            const __m512i low = _mm512_and_si512(w[b], _mm512_sub_epi32(_mm512_setzero_si512(), w[b])); \
            const __m512i leaf = _mm512_sub_epi32(_mm512_set1_epi32(31), _mm512_lzcnt_epi32(low)); \
            sum[b] = _mm512_add_ps(sum[b], _mm512_permutex2var_ps(lo, leaf, hi));          \
        }                                                                                   \
    }                                                                                       \
    _Pragma("GCC unroll 4") for (int b = 0; b < NB; ++b) sums[b] = sum[b];                  \
}

AVX512_KERNEL(1)
AVX512_KERNEL(2)
AVX512_KERNEL(3)
AVX512_KERNEL(4)

__attribute__((target("avx2,fma"))) static void score_avx2(const Forest *f, const float *x, Py_ssize_t n,
                                                           float *out, float *block) {
    static void (*const kernels[GROUP])(const Forest *, const float *, __m256 *) = {avx2_1, avx2_2, avx2_3, avx2_4};
    const int gathers = GATHERS(f);
    for (Py_ssize_t r0 = 0; r0 < n; r0 += GROUP * 8) {
        const int m = n - r0 < GROUP * 8 ? (int)(n - r0) : GROUP * 8, nb = (m + 7) / 8;
        if (gathers) transpose_avx2(f, x, r0, m, nb, block);
        else transpose(f, x, r0, m, nb * 8, block);
        __m256 sums[GROUP];
        kernels[nb - 1](f, block, sums);
        float lanes[GROUP * 8];
        for (int b = 0; b < nb; ++b) _mm256_storeu_ps(lanes + 8 * b, sums[b]);
        for (int i = 0; i < m; ++i) out[r0 + i] = finish(f, lanes[i]);
    }
}

__attribute__((target("avx512f,avx512cd"))) static void score_avx512(const Forest *f, const float *x,
                                                                     Py_ssize_t n, float *out, float *block) {
    static void (*const kernels[GROUP])(const Forest *, const float *, __m512 *) = {
        avx512_1, avx512_2, avx512_3, avx512_4};
    const int gathers = GATHERS(f);
    for (Py_ssize_t r0 = 0; r0 < n; r0 += GROUP * 16) {
        const int m = n - r0 < GROUP * 16 ? (int)(n - r0) : GROUP * 16, nb = (m + 15) / 16;
        if (gathers) transpose_avx512(f, x, r0, m, nb, block);
        else transpose(f, x, r0, m, nb * 16, block);
        __m512 sums[GROUP];
        kernels[nb - 1](f, block, sums);
        float lanes[GROUP * 16];
        for (int b = 0; b < nb; ++b) _mm512_storeu_ps(lanes + 16 * b, sums[b]);
        for (int i = 0; i < m; ++i) out[r0 + i] = finish(f, lanes[i]);
    }
}

/* ------------------------------------------------------------------ the Python type */

static void forest_free_arrays(Forest *self) {
    PyMem_RawFree(self->start);
    PyMem_RawFree(self->split);
    PyMem_RawFree(self->feature);
    PyMem_RawFree(self->threshold);
    PyMem_RawFree(self->mask);
    PyMem_RawFree(self->leaves);
    PyMem_RawFree(self->used);
    PyMem_RawFree(self->offset);
    PyMem_RawFree(self->nmask);
    free(self->scratch);
    self->start = self->split = self->feature = self->used = self->offset = NULL;
    self->threshold = NULL;
    self->mask = self->nmask = NULL;
    self->leaves = self->scratch = NULL;
    self->n_trees = self->n_used = 0;
}

static void forest_dealloc(Forest *self) {
    forest_free_arrays(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A copy of a 1-d buffer of `count` items of 4 bytes with format `fmt` ('i', 'I' or 'f'). */
static void *copy_array(PyObject *obj, const char *name, char fmt, Py_ssize_t count) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    const char *f = view.format ? view.format : "B";
    if (*f == '@' || *f == '=' || *f == '<') ++f;
    void *copy = NULL;
    if (view.ndim != 1 || view.itemsize != 4 || f[0] != fmt || f[1] != '\0' || view.shape[0] != count) {
        PyErr_Format(PyExc_ValueError, "%s must be a 1-d array of %zd items of format '%c'", name, count, fmt);
    } else if (!(copy = PyMem_RawMalloc((size_t)(count ? count : 1) * 4))) {
        PyErr_NoMemory();
    } else {
        memcpy(copy, view.buf, (size_t)count * 4);
    }
    PyBuffer_Release(&view);
    return copy;
}

/* The vector kernels' arrays of checked nodes: the features tested, where each node's column
 * is in the block, the masks inverted, the scratch block. */
static int used_features(Forest *self, Py_ssize_t n_nodes, int n_features) {
    int32_t *place = PyMem_RawMalloc((size_t)n_features * sizeof(int32_t));
    const size_t count = n_nodes ? (size_t)n_nodes : 1;
    self->offset = PyMem_RawMalloc(count * sizeof(int32_t));
    self->nmask = PyMem_RawMalloc(count * sizeof(uint32_t));
    self->used = PyMem_RawMalloc((size_t)n_features * sizeof(int32_t));
    if (!place || !self->offset || !self->nmask || !self->used) {
        PyMem_RawFree(place);
        PyErr_NoMemory();
        return -1;
    }
    for (int j = 0; j < n_features; ++j) place[j] = -1;
    for (Py_ssize_t k = 0; k < n_nodes; ++k) place[self->feature[k]] = 0;
    int32_t n_used = 0;
    for (int j = 0; j < n_features; ++j)
        if (place[j] == 0) {
            place[j] = n_used;
            self->used[n_used++] = j;
        }
    for (Py_ssize_t k = 0; k < n_nodes; ++k) {
        self->offset[k] = place[self->feature[k]] * STRIDE * (int32_t)sizeof(float);
        self->nmask[k] = ~self->mask[k];
    }
    PyMem_RawFree(place);
    self->n_used = n_used;
    /* at least one 64-byte line: aligned_alloc's size must be a multiple of the alignment */
    const size_t bytes = (size_t)(n_used ? n_used : 1) * STRIDE * sizeof(float);
    if (!(self->scratch = aligned_alloc(64, bytes))) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int forest_init(Forest *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"start", "split", "feature", "threshold", "mask", "leaves",
                            "n_features", "base", "logistic", "mode", NULL};
    PyObject *start, *split, *feature, *threshold, *mask, *leaves;
    int n_features, logistic, mode;
    float base;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOifpi", names, &start, &split, &feature, &threshold,
                                     &mask, &leaves, &n_features, &base, &logistic, &mode))
        return -1;
    forest_free_arrays(self);
    if (n_features < 1 || (mode != BRANCH_LEQ && mode != BRANCH_LT)) {
        PyErr_SetString(PyExc_ValueError, "n_features must be >= 1 and mode 0 (BRANCH_LEQ) or 1 (BRANCH_LT)");
        return -1;
    }
    const Py_ssize_t n_trees = PyObject_Length(split);
    if (n_trees < 1) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a forest needs at least one tree");
        return -1;
    }
    if (!(self->start = copy_array(start, "start", 'i', n_trees + 1))) goto fail;
    const Py_ssize_t n_nodes = self->start[n_trees];
    if (!(self->split = copy_array(split, "split", 'i', n_trees))) goto fail;
    if (!(self->feature = copy_array(feature, "feature", 'i', n_nodes))) goto fail;
    if (!(self->threshold = copy_array(threshold, "threshold", 'f', n_nodes))) goto fail;
    if (!(self->mask = copy_array(mask, "mask", 'I', n_nodes))) goto fail;
    if (!(self->leaves = copy_array(leaves, "leaves", 'f', n_trees * LEAVES))) goto fail;
    /* The kernels index by these without checks: check them once here. */
    for (Py_ssize_t t = 0; t < n_trees; ++t) {
        if (self->start[t] < 0 || self->start[t] > self->split[t] || self->split[t] > self->start[t + 1]) {
            PyErr_Format(PyExc_ValueError, "tree %zd: start <= split <= next start does not hold", t);
            goto fail;
        }
    }
    for (Py_ssize_t t = 0; t < n_trees; ++t) {
        uint32_t left = UINT32_MAX;  /* a row whose every test is false still has a leaf: the last */
        for (int32_t k = self->start[t]; k < self->start[t + 1]; ++k) left &= self->mask[k];
        if (!left) {
            PyErr_Format(PyExc_ValueError, "tree %zd: its masks rule out every leaf", t);
            goto fail;
        }
    }
    for (Py_ssize_t k = 0; k < n_nodes; ++k) {
        if (self->feature[k] < 0 || self->feature[k] >= n_features) {
            PyErr_Format(PyExc_ValueError, "node %zd tests feature %d of %d", k, (int)self->feature[k], n_features);
            goto fail;
        }
    }
    if (used_features(self, n_nodes, n_features) < 0) goto fail;
    self->n_trees = (int32_t)n_trees;
    self->n_nodes = (int32_t)n_nodes;
    self->n_features = n_features;
    self->base = base;
    self->logistic = logistic;
    self->mode = mode;
    return 0;
fail:
    forest_free_arrays(self);
    return -1;
}

static int kernel_of(const char *name) {
    if (!name || !strcmp(name, "auto")) return BEST;
    for (int k = 0; k <= KERNEL_AVX512; ++k)
        if (!strcmp(name, KERNEL_NAMES[k])) return k <= BEST ? k : -2;
    return -3;
}

/* score()'s arguments other than the plain (features, out): through the keyword parser, which
 * words every error. The objects it answers are the caller's (held for the call). */
static int score_arguments(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **features,
                           PyObject **out, const char **kernel_name) {
    static char *names[] = {"features", "out", "kernel", NULL};
    PyObject *tuple = PyTuple_New(nargs), *kwds = NULL;
    if (!tuple) return -1;
    for (Py_ssize_t i = 0; i < nargs; ++i) PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    const Py_ssize_t n_kw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (n_kw && !(kwds = PyDict_New())) goto fail;
    for (Py_ssize_t i = 0; i < n_kw; ++i)
        if (PyDict_SetItem(kwds, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) goto fail;
    const int ok = PyArg_ParseTupleAndKeywords(tuple, kwds, "OO|$s", names, features, out, kernel_name);
    Py_DECREF(tuple);
    Py_XDECREF(kwds);
    return ok ? 0 : -1;
fail:
    Py_DECREF(tuple);
    Py_XDECREF(kwds);
    return -1;
}

/* Fast-call: a pipeline batch's call is score(features, out), parsed by no keyword parser (it
 * cost more than the trees of a 50-record batch's kind). */
static PyObject *forest_score(Forest *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *features, *out;
    const char *kernel_name = NULL;
    if (nargs == 2 && !kwnames) {
        features = args[0];
        out = args[1];
    } else if (score_arguments(args, nargs, kwnames, &features, &out, &kernel_name) < 0) {
        return NULL;
    }
    if (!self->n_trees) {
        PyErr_SetString(PyExc_RuntimeError, "Forest is not initialized");
        return NULL;
    }
    const int kernel = kernel_of(kernel_name);
    if (kernel < 0) {
        PyErr_Format(PyExc_ValueError, "kernel %s: %s", kernel_name,
                     kernel == -2 ? "not supported by this CPU" : "not one of auto, scalar, avx2, avx512");
        return NULL;
    }
    Py_buffer x, y;
    if (scorebuf_acquire(features, out, self->n_features, &x, &y) < 0) return NULL;
    PyObject *result = NULL;
    const Py_ssize_t n = x.shape[0];
    /* The kernels' transposed rows: the forest's own scratch while the GIL is held (an
     * allocation per call is a fixed cost of every kind of every batch). */
    const int release = n >= RELEASE_GIL_ROWS;
    float *block = kernel == KERNEL_SCALAR ? NULL : !release ? self->scratch
                 : aligned_alloc(64, (size_t)(self->n_used ? self->n_used : 1) * STRIDE * sizeof(float));
    if (kernel != KERNEL_SCALAR && !block) {
        PyErr_NoMemory();
    } else {
        PyThreadState *state = release ? PyEval_SaveThread() : NULL;
        if (kernel == KERNEL_AVX512) score_avx512(self, x.buf, n, y.buf, block);
        else if (kernel == KERNEL_AVX2) score_avx2(self, x.buf, n, y.buf, block);
        else score_scalar(self, x.buf, n, y.buf);
        if (release) PyEval_RestoreThread(state);
        result = Py_NewRef(Py_None);
    }
    if (block != self->scratch) free(block);
    scorebuf_release(&x, &y);
    return result;
}

static PyObject *get_n_features(Forest *self, void *closure) { return PyLong_FromLong(self->n_features); }
static PyObject *get_n_trees(Forest *self, void *closure) { return PyLong_FromLong(self->n_trees); }
static PyObject *get_n_nodes(Forest *self, void *closure) { return PyLong_FromLong(self->n_nodes); }

static PyObject *kernels(PyObject *module, PyObject *unused) {
    PyObject *names = PyTuple_New(BEST + 1);
    if (!names) return NULL;
    for (int k = 0; k <= BEST; ++k) PyTuple_SET_ITEM(names, k, PyUnicode_FromString(KERNEL_NAMES[k]));
    return names;
}

static PyMethodDef forest_methods[] = {
    {"score", (PyCFunction)(void (*)(void))forest_score, METH_FASTCALL | METH_KEYWORDS,
     "score(features, out, *, kernel='auto'): each row's score of a float32 [rows, n_features] matrix into "
     "float32 out[rows]"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef forest_getset[] = {
    {"n_features", (getter)get_n_features, NULL, "features per row", NULL},
    {"n_trees", (getter)get_n_trees, NULL, "trees", NULL},
    {"n_nodes", (getter)get_n_nodes, NULL, "test nodes, all trees", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ForestType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scorer.native._forest.Forest",
    .tp_doc = "A tree ensemble scored by QuickScorer's bit vectors, many rows a time",
    .tp_basicsize = sizeof(Forest),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)forest_init,
    .tp_dealloc = (destructor)forest_dealloc,
    .tp_methods = forest_methods,
    .tp_getset = forest_getset,
};

static PyMethodDef module_methods[] = {
    {"kernels", kernels, METH_NOARGS, "kernels(): the kernels this CPU runs, the last the one 'auto' picks"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef forest_module = {
    PyModuleDef_HEAD_INIT, "_forest", "tree ensembles scored without a branch per node", -1, module_methods,
};

PyMODINIT_FUNC PyInit__forest(void) {
    BEST = best_kernel();
    if (PyType_Ready(&ForestType) < 0) return NULL;
    PyObject *m = PyModule_Create(&forest_module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "Forest", (PyObject *)&ForestType) < 0 ||
        PyModule_AddIntConstant(m, "LEAVES", LEAVES) < 0 || PyModule_AddIntConstant(m, "BRANCH_LEQ", BRANCH_LEQ) < 0 ||
        PyModule_AddIntConstant(m, "BRANCH_LT", BRANCH_LT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
