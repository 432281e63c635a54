/* The checker's word index in C: copilot/checker.py's _Doc builds the same in Python (the reference, compared in
 * tests/test_native.py). index(text, size) returns the text's words (its runs of \w characters, as re's \w reads a
 * str: alphanumeric or "_") and, for each word start, the first `size` characters from there mapped to the ascending
 * positions where they begin a word.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static inline int is_word(Py_UCS4 ch) { return Py_UNICODE_ISALNUM(ch) || ch == '_'; }

static PyObject *word_index(PyObject *module, PyObject *args) {
    PyObject *text;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "Un", &text, &size)) return NULL;
    if (size < 1) {
        PyErr_SetString(PyExc_ValueError, "size must be at least 1");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *words = PyList_New(0), *keyed = PyDict_New();
    if (words == NULL || keyed == NULL) goto fail;
    Py_ssize_t i = 0;
    while (i < n) {
        if (!is_word(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t start = i;
        while (i < n && is_word(PyUnicode_READ(kind, data, i))) i++;
        PyObject *word = PyUnicode_Substring(text, start, i);
        if (word == NULL) goto fail;
        int failed = PyList_Append(words, word);
        Py_DECREF(word);
        if (failed) goto fail;
        PyObject *key = PyUnicode_Substring(text, start, start + size < n ? start + size : n);
        if (key == NULL) goto fail;
        PyObject *at = PyDict_GetItemWithError(keyed, key); /* borrowed */
        PyObject *pos = PyLong_FromSsize_t(start);
        if (pos == NULL || (at == NULL && PyErr_Occurred())) {
            Py_XDECREF(pos);
            Py_DECREF(key);
            goto fail;
        }
        if (at == NULL) {
            PyObject *list = PyList_New(1);
            if (list == NULL) {
                Py_DECREF(pos);
                Py_DECREF(key);
                goto fail;
            }
            PyList_SET_ITEM(list, 0, pos); /* steals pos */
            failed = PyDict_SetItem(keyed, key, list);
            Py_DECREF(list);
        } else {
            failed = PyList_Append(at, pos);
            Py_DECREF(pos);
        }
        Py_DECREF(key);
        if (failed) goto fail;
    }
    PyObject *result = PyTuple_Pack(2, words, keyed);
    Py_DECREF(words);
    Py_DECREF(keyed);
    return result;
fail:
    Py_XDECREF(words);
    Py_XDECREF(keyed);
    return NULL;
}

static PyMethodDef methods[] = {
    {"index", word_index, METH_VARARGS, "index(text, size) -> (words, {first size characters: word starts})"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "copilot._word_index", "The checker's word index in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__word_index(void) { return PyModule_Create(&module); }
