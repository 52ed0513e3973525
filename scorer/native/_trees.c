/* Scoring with a tl2cgen-compiled tree library (scorer.inference.compiled_build builds it).
 *
 * The library's ABI (tl2cgen 1.x, the generated header.h): `predict(union Entry *row, int
 * pred_margin, float *result)` ADDS every tree's leaf to result[0..num_class) and, with
 * pred_margin 0, applies the model's postprocessor (sigmoid for the shipped binary models,
 * softmax for two-class ones). A missing feature is `missing = -1`, which the scorer's
 * NaN stands for. P(malicious) is the last output: the only one of a sigmoid model,
 * column 1 of a two-class one, as the ONNX model's probabilities[:, 1].
 *
 * The per-row loop is here rather than in Python because a row costs ~0.8 us of trees:
 * a Python-level call per row would cost more than the trees themselves. deploy/gpu's C++
 * backend reads the same ABI (treelite_backend/compiled_model.cc). C with the CPython API
 * only: matrices come in through the buffer protocol, as in _native.c.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_scorebuf.h"

union Entry {
    int missing;
    float fvalue;
    int qvalue;
};

typedef void (*predict_fn)(union Entry *, int, float *);

/* Below this many rows the GIL stays held: releasing it lets another thread take it, and
 * winning it back can cost up to the switch interval (5 ms), more than a pipeline batch's
 * trees. From here the trees take ~1 ms and another thread may use the time. */
#define RELEASE_GIL_ROWS 1024
#define MAX_OUTPUTS 2

typedef struct {
    PyObject_HEAD
    void *handle;
    predict_fn predict;
    int32_t n_features;
    int32_t n_outputs;
} Trees;

static void trees_dealloc(Trees *self) {
    if (self->handle) dlclose(self->handle);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int fail(Trees *self, const char *path, const char *why) {
    PyErr_Format(PyExc_ValueError, "%s: %s", path, why);
    if (self->handle) dlclose(self->handle);
    self->handle = NULL;
    return -1;
}

static int trees_init(Trees *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"path", NULL};
    const char *path;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s", names, &path)) return -1;
    if (self->handle) {
        PyErr_SetString(PyExc_RuntimeError, "Trees is initialized once");
        return -1;
    }
    self->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!self->handle) {
        PyErr_Format(PyExc_OSError, "cannot open %s: %s", path, dlerror());
        return -1;
    }
    int32_t (*num_feature)(void) = (int32_t (*)(void))dlsym(self->handle, "get_num_feature");
    int32_t (*num_target)(void) = (int32_t (*)(void))dlsym(self->handle, "get_num_target");
    void (*num_class)(int32_t *) = (void (*)(int32_t *))dlsym(self->handle, "get_num_class");
    const char *(*threshold_type)(void) = (const char *(*)(void))dlsym(self->handle, "get_threshold_type");
    const char *(*leaf_type)(void) = (const char *(*)(void))dlsym(self->handle, "get_leaf_output_type");
    predict_fn predict = (predict_fn)dlsym(self->handle, "predict");
    if (!num_feature || !num_target || !num_class || !threshold_type || !leaf_type || !predict)
        return fail(self, path, "not a tl2cgen 1.x library (no get_num_feature/get_num_target/get_num_class/predict)");
    if (strcmp(threshold_type(), "float32") != 0 || strcmp(leaf_type(), "float32") != 0)
        return fail(self, path, "thresholds and leaves must be float32");
    if (num_target() != 1) return fail(self, path, "a classifier has 1 target");
    int32_t classes = 0;
    num_class(&classes);
    if (classes < 1 || classes > MAX_OUTPUTS) return fail(self, path, "a binary classifier has 1 or 2 outputs");
    self->n_features = num_feature();
    if (self->n_features < 1) return fail(self, path, "no features");
    self->n_outputs = classes;
    self->predict = predict;
    return 0;
}

static PyObject *trees_score(Trees *self, PyObject *args) {
    PyObject *features, *out;
    if (!PyArg_ParseTuple(args, "OO", &features, &out)) return NULL;
    if (!self->predict) {
        PyErr_SetString(PyExc_RuntimeError, "Trees is not initialized");
        return NULL;
    }
    Py_buffer x, y;
    if (scorebuf_acquire(features, out, self->n_features, &x, &y) < 0) return NULL;
    PyObject *result = NULL;
    const Py_ssize_t n = x.shape[0];
    union Entry *entries = NULL;
    if (!(entries = PyMem_RawMalloc(sizeof(union Entry) * (size_t)self->n_features))) {
        PyErr_NoMemory();
    } else {
        const float *rows = x.buf;
        float *scores = y.buf;
        const int32_t k = self->n_features, last = self->n_outputs - 1;
        const int release = n >= RELEASE_GIL_ROWS;
        PyThreadState *state = release ? PyEval_SaveThread() : NULL;
        for (Py_ssize_t r = 0; r < n; ++r) {
            const float *row = rows + r * k;
            for (int32_t j = 0; j < k; ++j) {
                if (isnan(row[j])) entries[j].missing = -1;
                else entries[j].fvalue = row[j];
            }
            float margin[MAX_OUTPUTS] = {0.0f};
            self->predict(entries, 0, margin);
            scores[r] = margin[last];
        }
        if (release) PyEval_RestoreThread(state);
        PyMem_RawFree(entries);
        result = Py_NewRef(Py_None);
    }
    scorebuf_release(&x, &y);
    return result;
}

static PyObject *get_n_features(Trees *self, void *closure) { return PyLong_FromLong(self->n_features); }
static PyObject *get_n_outputs(Trees *self, void *closure) { return PyLong_FromLong(self->n_outputs); }

static PyMethodDef trees_methods[] = {
    {"score", (PyCFunction)trees_score, METH_VARARGS,
     "score(features, out): P(malicious) of each row of a float32 [rows, n_features] matrix into float32 out[rows]"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef trees_getset[] = {
    {"n_features", (getter)get_n_features, NULL, "features per row", NULL},
    {"n_outputs", (getter)get_n_outputs, NULL, "outputs per row of the library (1: sigmoid, 2: two classes)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TreesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scorer.native._trees.Trees",
    .tp_doc = "A tl2cgen-compiled tree library, opened with dlopen",
    .tp_basicsize = sizeof(Trees),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)trees_init,
    .tp_dealloc = (destructor)trees_dealloc,
    .tp_methods = trees_methods,
    .tp_getset = trees_getset,
};

static struct PyModuleDef trees_module = {
    PyModuleDef_HEAD_INIT, "_trees", "tl2cgen-compiled trees scored in process", -1, NULL,
};

PyMODINIT_FUNC PyInit__trees(void) {
    if (PyType_Ready(&TreesType) < 0) return NULL;
    PyObject *m = PyModule_Create(&trees_module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "Trees", (PyObject *)&TreesType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
