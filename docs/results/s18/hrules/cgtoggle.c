/* start()/stop(): callgrind's instrumentation toggled from Python (valgrind --tool=callgrind --instr-atstart=no). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <valgrind/callgrind.h>
static PyObject *start(PyObject *s, PyObject *a) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; Py_RETURN_NONE; }
static PyObject *stop(PyObject *s, PyObject *a) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("passes"); Py_RETURN_NONE; }
static PyMethodDef m[] = {{"start", start, METH_NOARGS, ""}, {"stop", stop, METH_NOARGS, ""}, {NULL}};
static struct PyModuleDef d = {PyModuleDef_HEAD_INIT, "cgtoggle", "", -1, m};
PyMODINIT_FUNC PyInit_cgtoggle(void) { return PyModule_Create(&d); }
