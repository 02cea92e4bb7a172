"""Reduce and load functions for the objects moto holds that do not pickle as they are.

Every loader here is named by module path in snapshot files, so renaming one is a format change
(``rentaliq.local.persistence`` re-exports the names the first snapshots used).  Covered: locks
(recreated), spooled temporary files (their bytes), lambdas and closures moto keeps in
``defaultdict`` factories (code via ``marshal`` + module + closure values: the standard library
pickles functions only by reference, and ``dill`` is not a dependency; marshal makes snapshots
Python-version specific, hence the Python version in FORMAT), weak references and collections,
``cryptography`` keys and certificates (as DER), and dict subclasses whose ``items()``/``__init__``
break default pickling (S3's ``_VersionedKeyStore`` would keep only the latest version).
"""

from __future__ import annotations

import collections
import importlib
import marshal
import tempfile
import types
import weakref
from typing import Any

DICT_BASES = (dict, collections.defaultdict, collections.OrderedDict)


def custom_pickling(t: type) -> bool:
    """Whether a class (below the dict bases) defines its own pickling."""
    for klass in t.__mro__:
        if klass in DICT_BASES or klass is object:
            continue
        if any(n in vars(klass) for n in ("__reduce__", "__reduce_ex__", "__getstate__", "__setstate__")):
            return True
    return False


def reduce_dictsub(obj: Any) -> Any:
    factory = obj.default_factory if isinstance(obj, collections.defaultdict) else None
    state = (getattr(obj, "__dict__", None), factory, list(dict.items(obj)))
    return new_dictsub, (type(obj),), state, None, None, set_dictsub_state


def new_dictsub(cls: type) -> Any:
    return cls.__new__(cls)


def set_dictsub_state(obj: Any, state: tuple[Any, Any, list[tuple[Any, Any]]]) -> None:
    attrs, factory, items = state
    if attrs:
        obj.__dict__.update(attrs)
    if isinstance(obj, collections.defaultdict):
        obj.default_factory = factory
    setitem = collections.OrderedDict.__setitem__ if isinstance(obj, collections.OrderedDict) else dict.__setitem__
    for k, v in items:
        setitem(obj, k, v)


new_model = new_dictsub  # ``cls.__new__(cls)``; an entry's own object, written with its paged collections left out


def reduce_spooled(obj: Any) -> Any:
    pos = obj.tell()
    obj.seek(0)
    data = obj.read()
    obj.seek(pos)
    return new_spooled, (data, obj._max_size)


def new_spooled(data: bytes, max_size: int) -> Any:
    f = tempfile.SpooledTemporaryFile(max_size)
    f.write(data)
    f.seek(0)
    return f


# ------------------------------------------------------------------ local functions

EMPTY_CELL = ("__riq_empty_cell__",)


def _cell_value(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return EMPTY_CELL


def reduce_function(fn: Any) -> Any:
    qn = fn.__qualname__
    if "<locals>" not in qn and "<lambda>" not in qn:
        return NotImplemented  # importable: pickled by reference
    cells = tuple(_cell_value(c) for c in fn.__closure__) if fn.__closure__ else None
    return make_function, (
        marshal.dumps(fn.__code__),
        fn.__module__,
        fn.__name__,
        qn,
        fn.__defaults__,
        fn.__kwdefaults__,
        cells,
    )


def make_function(code: bytes, module: str, name: str, qualname: str, defaults: Any, kwdefaults: Any, cells: Any) -> Any:
    mod = importlib.import_module(module) if module else None
    closure = None
    if cells is not None:
        closure = tuple(types.CellType() if v == EMPTY_CELL else types.CellType(v) for v in cells)
    fn = types.FunctionType(marshal.loads(code), vars(mod) if mod else {}, name, defaults, closure)
    fn.__qualname__ = qualname
    fn.__kwdefaults__ = kwdefaults
    fn.__module__ = module
    return fn


# ------------------------------------------------------------------ weak references


def dead() -> None:
    return None


def make_weakref(referent: Any) -> Any:
    return dead if referent is None else weakref.ref(referent)


def reduce_weak(obj: Any) -> Any:
    t = type(obj)
    if t is weakref.ref:
        return make_weakref, (obj(),)
    if t is weakref.WeakSet:
        return t, (list(obj),)
    return t, (dict(obj.items()),)


# ------------------------------------------------------------------ cryptography objects


def crypto_reducer(t: type) -> Any:
    """The reducer for a ``cryptography`` key/certificate class, or None."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import types as asym

    if issubclass(t, asym.PrivateKeyTypes.__args__):  # type: ignore[attr-defined]
        return reduce_private_key
    if issubclass(t, asym.PublicKeyTypes.__args__):  # type: ignore[attr-defined]
        return reduce_public_key
    if issubclass(t, x509.Certificate):
        return reduce_certificate
    if issubclass(t, x509.CertificateSigningRequest):
        return reduce_csr
    return None


def reduce_private_key(key: Any) -> Any:
    from cryptography.hazmat.primitives import serialization as ser

    return load_private_key, (key.private_bytes(ser.Encoding.DER, ser.PrivateFormat.PKCS8, ser.NoEncryption()),)


def reduce_public_key(key: Any) -> Any:
    from cryptography.hazmat.primitives import serialization as ser

    return load_public_key, (key.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo),)


def reduce_certificate(cert: Any) -> Any:
    from cryptography.hazmat.primitives import serialization as ser

    return load_certificate, (cert.public_bytes(ser.Encoding.DER),)


def reduce_csr(csr: Any) -> Any:
    from cryptography.hazmat.primitives import serialization as ser

    return load_csr, (csr.public_bytes(ser.Encoding.DER),)


def load_private_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_private_key(der, None)


def load_public_key(der: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_public_key(der)


def load_certificate(der: bytes) -> Any:
    from cryptography import x509

    return x509.load_der_x509_certificate(der)


def load_csr(der: bytes) -> Any:
    from cryptography import x509

    return x509.load_der_x509_csr(der)
