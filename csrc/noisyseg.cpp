// The Python module noisyseg._C. It exports nothing by itself: importing it loads this shared
// library, whose static initialisers register every op with the dispatcher under the
// `noisyseg` namespace (see csrc/ops/<op>.cpp for each schema).
#include <Python.h>

static struct PyModuleDef noisyseg_module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&noisyseg_module); }
