# p11.py - the integration tests' python3 ctypes binding of kvault.so's PKCS#11 function list.
# Imported by the tests' python snippets (lib.sh's p11py puts this directory on PYTHONPATH):
#     from p11 import *
# Loads the module named by $KV_SO (else sys.argv[1]), binds every CK_FUNCTION_LIST entry by
# name (C_Initialize ... C_WaitForSlotEvent, standard order), and offers the structures
# (CK_ATTRIBUTE, CK_MECHANISM, CK_GCM_PARAMS, CK_RSA_PKCS_OAEP_PARAMS, CK_RSA_PKCS_PSS_PARAMS),
# the constants and small helpers the tests share. Functions return the raw CK_RV, so a test
# can assert any return code; helpers that need success raise P11Error naming the CK_RV.
import ctypes
import os
import sys
import time
# (the ctypes names are exported too: the tests' snippets use them after `from p11 import *`)
from ctypes import (CFUNCTYPE, POINTER, Structure, byref, c_char_p, c_ubyte, c_ulong,
                    c_void_p, sizeof)

# ---- the module and its function list ----
KV_SO = os.environ.get("KV_SO") or sys.argv[1]
lib = ctypes.CDLL(KV_SO)

_UL, _P, _BB = c_ulong, c_void_p, c_ubyte  # CK_ULONG (handles, lengths, flags), pointers, CK_BBOOL
# CK_FUNCTION_LIST (PKCS#11 2.40, the order 3.0 keeps): name and argument types. Every pointer
# argument is a c_void_p, which takes None, bytes, ctypes buffers and arrays, byref() and ints.
FUNCTIONS = [  # index in the list: name, argument types
    ("C_Initialize", [_P]),  # 0
    ("C_Finalize", [_P]),  # 1
    ("C_GetInfo", [_P]),  # 2
    ("C_GetFunctionList", [_P]),  # 3
    ("C_GetSlotList", [_BB, _P, _P]),  # 4
    ("C_GetSlotInfo", [_UL, _P]),  # 5
    ("C_GetTokenInfo", [_UL, _P]),  # 6
    ("C_GetMechanismList", [_UL, _P, _P]),  # 7
    ("C_GetMechanismInfo", [_UL, _UL, _P]),  # 8
    ("C_InitToken", [_UL, _P, _UL, _P]),  # 9
    ("C_InitPIN", [_UL, _P, _UL]),  # 10
    ("C_SetPIN", [_UL, _P, _UL, _P, _UL]),  # 11
    ("C_OpenSession", [_UL, _UL, _P, _P, _P]),  # 12
    ("C_CloseSession", [_UL]),  # 13
    ("C_CloseAllSessions", [_UL]),  # 14
    ("C_GetSessionInfo", [_UL, _P]),  # 15
    ("C_GetOperationState", [_UL, _P, _P]),  # 16
    ("C_SetOperationState", [_UL, _P, _UL, _UL, _UL]),  # 17
    ("C_Login", [_UL, _UL, _P, _UL]),  # 18
    ("C_Logout", [_UL]),  # 19
    ("C_CreateObject", [_UL, _P, _UL, _P]),  # 20
    ("C_CopyObject", [_UL, _UL, _P, _UL, _P]),  # 21
    ("C_DestroyObject", [_UL, _UL]),  # 22
    ("C_GetObjectSize", [_UL, _UL, _P]),  # 23
    ("C_GetAttributeValue", [_UL, _UL, _P, _UL]),  # 24
    ("C_SetAttributeValue", [_UL, _UL, _P, _UL]),  # 25
    ("C_FindObjectsInit", [_UL, _P, _UL]),  # 26
    ("C_FindObjects", [_UL, _P, _UL, _P]),  # 27
    ("C_FindObjectsFinal", [_UL]),  # 28
    ("C_EncryptInit", [_UL, _P, _UL]),  # 29
    ("C_Encrypt", [_UL, _P, _UL, _P, _P]),  # 30
    ("C_EncryptUpdate", [_UL, _P, _UL, _P, _P]),  # 31
    ("C_EncryptFinal", [_UL, _P, _P]),  # 32
    ("C_DecryptInit", [_UL, _P, _UL]),  # 33
    ("C_Decrypt", [_UL, _P, _UL, _P, _P]),  # 34
    ("C_DecryptUpdate", [_UL, _P, _UL, _P, _P]),  # 35
    ("C_DecryptFinal", [_UL, _P, _P]),  # 36
    ("C_DigestInit", [_UL, _P]),  # 37
    ("C_Digest", [_UL, _P, _UL, _P, _P]),  # 38
    ("C_DigestUpdate", [_UL, _P, _UL]),  # 39
    ("C_DigestKey", [_UL, _UL]),  # 40
    ("C_DigestFinal", [_UL, _P, _P]),  # 41
    ("C_SignInit", [_UL, _P, _UL]),  # 42
    ("C_Sign", [_UL, _P, _UL, _P, _P]),  # 43
    ("C_SignUpdate", [_UL, _P, _UL]),  # 44
    ("C_SignFinal", [_UL, _P, _P]),  # 45
    ("C_SignRecoverInit", [_UL, _P, _UL]),  # 46
    ("C_SignRecover", [_UL, _P, _UL, _P, _P]),  # 47
    ("C_VerifyInit", [_UL, _P, _UL]),  # 48
    ("C_Verify", [_UL, _P, _UL, _P, _UL]),  # 49
    ("C_VerifyUpdate", [_UL, _P, _UL]),  # 50
    ("C_VerifyFinal", [_UL, _P, _UL]),  # 51
    ("C_VerifyRecoverInit", [_UL, _P, _UL]),  # 52
    ("C_VerifyRecover", [_UL, _P, _UL, _P, _P]),  # 53
    ("C_DigestEncryptUpdate", [_UL, _P, _UL, _P, _P]),  # 54
    ("C_DecryptDigestUpdate", [_UL, _P, _UL, _P, _P]),  # 55
    ("C_SignEncryptUpdate", [_UL, _P, _UL, _P, _P]),  # 56
    ("C_DecryptVerifyUpdate", [_UL, _P, _UL, _P, _P]),  # 57
    ("C_GenerateKey", [_UL, _P, _P, _UL, _P]),  # 58
    ("C_GenerateKeyPair", [_UL, _P, _P, _UL, _P, _UL, _P, _P]),  # 59
    ("C_WrapKey", [_UL, _P, _UL, _UL, _P, _P]),  # 60
    ("C_UnwrapKey", [_UL, _P, _UL, _P, _UL, _P, _UL, _P]),  # 61
    ("C_DeriveKey", [_UL, _P, _UL, _P, _UL, _P]),  # 62
    ("C_SeedRandom", [_UL, _P, _UL]),  # 63
    ("C_GenerateRandom", [_UL, _P, _UL]),  # 64
    ("C_GetFunctionStatus", [_UL]),  # 65
    ("C_CancelFunction", [_UL]),  # 66
    ("C_WaitForSlotEvent", [_UL, _P, _P]),  # 67
]
_fl = c_void_p()
_rv = lib.C_GetFunctionList(byref(_fl))
assert _rv == 0 and _fl.value, "C_GetFunctionList: 0x%x" % _rv
# CK_FUNCTION_LIST: a CK_VERSION (2 bytes, padded to a pointer's size), then the pointers.
_table = ctypes.cast(_fl, POINTER(c_void_p))
VERSION = tuple(ctypes.cast(_fl, POINTER(c_ubyte))[:2])
for _i, (_name, _args) in enumerate(FUNCTIONS):
    assert _table[1 + _i], "%s: NULL in the function list" % _name
    globals()[_name] = CFUNCTYPE(c_ulong, *_args)(_table[1 + _i])


# ---- structures ----
class CK_ATTRIBUTE(Structure):
    _fields_ = [("type", c_ulong), ("pValue", c_void_p), ("ulValueLen", c_ulong)]


class CK_MECHANISM(Structure):
    _fields_ = [("mechanism", c_ulong), ("pParameter", c_void_p), ("ulParameterLen", c_ulong)]


class CK_GCM_PARAMS(Structure):
    _fields_ = [("pIv", c_void_p), ("ulIvLen", c_ulong), ("ulIvBits", c_ulong),
                ("pAAD", c_void_p), ("ulAADLen", c_ulong), ("ulTagBits", c_ulong)]


class CK_RSA_PKCS_OAEP_PARAMS(Structure):
    _fields_ = [("hashAlg", c_ulong), ("mgf", c_ulong), ("source", c_ulong),
                ("pSourceData", c_void_p), ("ulSourceDataLen", c_ulong)]


class CK_RSA_PKCS_PSS_PARAMS(Structure):
    _fields_ = [("hashAlg", c_ulong), ("mgf", c_ulong), ("sLen", c_ulong)]


Attr, Mech, Gcm, Oaep = CK_ATTRIBUTE, CK_MECHANISM, CK_GCM_PARAMS, CK_RSA_PKCS_OAEP_PARAMS

# ---- constants ----
CKU_SO, CKU_USER = 0, 1
CKF_RW_SESSION, CKF_SERIAL_SESSION = 0x2, 0x4
CKF_RW_SERIAL = CKF_RW_SESSION | CKF_SERIAL_SESSION
CKO_DATA, CKO_CERTIFICATE, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKO_SECRET_KEY = 0, 1, 2, 3, 4
CKK_RSA, CKK_EC, CKK_AES = 0, 3, 0x1F
CKA_CLASS, CKA_TOKEN, CKA_PRIVATE, CKA_LABEL, CKA_VALUE = 0x0, 0x1, 0x2, 0x3, 0x11
CKA_CERTIFICATE_TYPE, CKA_ISSUER, CKA_SERIAL_NUMBER, CKA_TRUSTED = 0x80, 0x81, 0x82, 0x86
CKA_KEY_TYPE, CKA_SUBJECT, CKA_ID, CKA_SENSITIVE = 0x100, 0x101, 0x102, 0x103
CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP = 0x104, 0x105, 0x106, 0x107
CKA_SIGN, CKA_VERIFY, CKA_START_DATE, CKA_END_DATE = 0x108, 0x10A, 0x110, 0x111
CKA_MODULUS, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT, CKA_PUBLIC_KEY_INFO = 0x120, 0x121, 0x122, 0x129
CKA_VALUE_LEN, CKA_EXTRACTABLE, CKA_LOCAL = 0x161, 0x162, 0x163
CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_SENSITIVE = 0x164, 0x165
CKA_MODIFIABLE, CKA_DESTROYABLE, CKA_EC_PARAMS, CKA_EC_POINT = 0x170, 0x172, 0x180, 0x181
CKA_KVAULT_HSM, CKA_KVAULT_ENABLED = 0x80000000 | 0x4B560001, 0x80000000 | 0x4B560002
CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP, CKM_RSA_PKCS_PSS = 0x0, 0x1, 0x9, 0xD
CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS = 0x40, 0x43
CKM_SHA_1, CKM_SHA256, CKM_SHA384, CKM_SHA512 = 0x220, 0x250, 0x260, 0x270
CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, CKM_ECDSA_SHA256 = 0x1040, 0x1041, 0x1044
CKM_AES_KEY_GEN, CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_AES_GCM = 0x1080, 0x1082, 0x1085, 0x1087
CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD = 0x2109, 0x210A
CKG_MGF1_SHA1, CKG_MGF1_SHA256 = 1, 2
CKZ_DATA_SPECIFIED = 1
EC_P256 = bytes.fromhex("06082a8648ce3d030107")  # CKA_EC_PARAMS: the OID of P-256

# CK_RV values by name; CKR_NAMES maps a value back to its name (rv_name).
CKR_CODES = {
    "CKR_OK": 0x0, "CKR_CANCEL": 0x1, "CKR_HOST_MEMORY": 0x2, "CKR_SLOT_ID_INVALID": 0x3,
    "CKR_GENERAL_ERROR": 0x5, "CKR_FUNCTION_FAILED": 0x6, "CKR_ARGUMENTS_BAD": 0x7,
    "CKR_NO_EVENT": 0x8, "CKR_NEED_TO_CREATE_THREADS": 0x9, "CKR_CANT_LOCK": 0xA,
    "CKR_ATTRIBUTE_READ_ONLY": 0x10, "CKR_ATTRIBUTE_SENSITIVE": 0x11,
    "CKR_ATTRIBUTE_TYPE_INVALID": 0x12, "CKR_ATTRIBUTE_VALUE_INVALID": 0x13,
    "CKR_ACTION_PROHIBITED": 0x1B, "CKR_DATA_INVALID": 0x20, "CKR_DATA_LEN_RANGE": 0x21,
    "CKR_DEVICE_ERROR": 0x30, "CKR_DEVICE_MEMORY": 0x31, "CKR_DEVICE_REMOVED": 0x32,
    "CKR_ENCRYPTED_DATA_INVALID": 0x40, "CKR_ENCRYPTED_DATA_LEN_RANGE": 0x41,
    "CKR_FUNCTION_CANCELED": 0x50, "CKR_FUNCTION_NOT_PARALLEL": 0x51,
    "CKR_FUNCTION_NOT_SUPPORTED": 0x54, "CKR_KEY_HANDLE_INVALID": 0x60,
    "CKR_KEY_SIZE_RANGE": 0x62, "CKR_KEY_TYPE_INCONSISTENT": 0x63, "CKR_KEY_NOT_NEEDED": 0x64,
    "CKR_KEY_CHANGED": 0x65, "CKR_KEY_NEEDED": 0x66, "CKR_KEY_INDIGESTIBLE": 0x67,
    "CKR_KEY_FUNCTION_NOT_PERMITTED": 0x68, "CKR_KEY_NOT_WRAPPABLE": 0x69,
    "CKR_KEY_UNEXTRACTABLE": 0x6A, "CKR_MECHANISM_INVALID": 0x70,
    "CKR_MECHANISM_PARAM_INVALID": 0x71, "CKR_OBJECT_HANDLE_INVALID": 0x82,
    "CKR_OPERATION_ACTIVE": 0x90, "CKR_OPERATION_NOT_INITIALIZED": 0x91,
    "CKR_PIN_INCORRECT": 0xA0, "CKR_PIN_INVALID": 0xA1, "CKR_PIN_LEN_RANGE": 0xA2,
    "CKR_PIN_EXPIRED": 0xA3, "CKR_PIN_LOCKED": 0xA4, "CKR_SESSION_CLOSED": 0xB0,
    "CKR_SESSION_COUNT": 0xB1, "CKR_SESSION_HANDLE_INVALID": 0xB3,
    "CKR_SESSION_PARALLEL_NOT_SUPPORTED": 0xB4, "CKR_SESSION_READ_ONLY": 0xB5,
    "CKR_SESSION_EXISTS": 0xB6, "CKR_SESSION_READ_ONLY_EXISTS": 0xB7,
    "CKR_SESSION_READ_WRITE_SO_EXISTS": 0xB8, "CKR_SIGNATURE_INVALID": 0xC0,
    "CKR_SIGNATURE_LEN_RANGE": 0xC1, "CKR_TEMPLATE_INCOMPLETE": 0xD0,
    "CKR_TEMPLATE_INCONSISTENT": 0xD1, "CKR_TOKEN_NOT_PRESENT": 0xE0,
    "CKR_TOKEN_NOT_RECOGNIZED": 0xE1, "CKR_TOKEN_WRITE_PROTECTED": 0xE2,
    "CKR_UNWRAPPING_KEY_HANDLE_INVALID": 0xF0, "CKR_UNWRAPPING_KEY_SIZE_RANGE": 0xF1,
    "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT": 0xF2, "CKR_USER_ALREADY_LOGGED_IN": 0x100,
    "CKR_USER_NOT_LOGGED_IN": 0x101, "CKR_USER_PIN_NOT_INITIALIZED": 0x102,
    "CKR_USER_TYPE_INVALID": 0x103, "CKR_USER_ANOTHER_ALREADY_LOGGED_IN": 0x104,
    "CKR_USER_TOO_MANY_TYPES": 0x105, "CKR_WRAPPED_KEY_INVALID": 0x110,
    "CKR_WRAPPED_KEY_LEN_RANGE": 0x112, "CKR_WRAPPING_KEY_HANDLE_INVALID": 0x113,
    "CKR_WRAPPING_KEY_SIZE_RANGE": 0x114, "CKR_WRAPPING_KEY_TYPE_INCONSISTENT": 0x115,
    "CKR_RANDOM_SEED_NOT_SUPPORTED": 0x120, "CKR_RANDOM_NO_RNG": 0x121,
    "CKR_DOMAIN_PARAMS_INVALID": 0x130, "CKR_CURVE_NOT_SUPPORTED": 0x140,
    "CKR_BUFFER_TOO_SMALL": 0x150, "CKR_SAVED_STATE_INVALID": 0x160,
    "CKR_INFORMATION_SENSITIVE": 0x170, "CKR_STATE_UNSAVEABLE": 0x180,
    "CKR_CRYPTOKI_NOT_INITIALIZED": 0x190, "CKR_CRYPTOKI_ALREADY_INITIALIZED": 0x191,
    "CKR_MUTEX_BAD": 0x1A0, "CKR_MUTEX_NOT_LOCKED": 0x1A1, "CKR_FUNCTION_REJECTED": 0x200,
    "CKR_OPERATION_CANCEL_FAILED": 0x202,
}
globals().update(CKR_CODES)
CKR_NAMES = {v: k for k, v in CKR_CODES.items()}


def rv_name(rv):
    """CKR_NAME (0x..) of a CK_RV."""
    return "%s (0x%x)" % (CKR_NAMES.get(rv, "CKR_?"), rv)


class P11Error(AssertionError):
    """A PKCS#11 call that had to succeed did not; .rv is its CK_RV."""

    def __init__(self, what, rv):
        super().__init__("%s: %s" % (what, rv_name(rv)))
        self.rv = rv


def ck(rv, what, ok=(CKR_OK,)):
    """Raises P11Error unless rv is one of ok; returns rv."""
    if rv not in ok:
        raise P11Error(what, rv)
    return rv


# ---- templates ----
_keep = []  # buffers the attributes made by A() point into (kept for the process)


def A(t, v):
    """A CK_ATTRIBUTE: v is bytes, bool (CK_BBOOL) or int (CK_ULONG)."""
    if isinstance(v, bool):
        b = ctypes.create_string_buffer(bytes([1 if v else 0]), 1)
    elif isinstance(v, int):
        b = ctypes.create_string_buffer(c_ulong(v).value.to_bytes(sizeof(c_ulong), sys.byteorder),
                                        sizeof(c_ulong))
    else:
        b = ctypes.create_string_buffer(v, len(v))
    _keep.append(b)
    return CK_ATTRIBUTE(t, ctypes.cast(b, c_void_p), len(b.raw))


def T(*attrs):
    """A template (CK_ATTRIBUTE array, never empty) and its count."""
    return (CK_ATTRIBUTE * max(1, len(attrs)))(*attrs), len(attrs)


def template(pairs):
    """A template from (type, value) pairs (values as for A) and its count."""
    return T(*[A(t, v) for t, v in pairs])


# ---- sessions, objects, attributes ----
def open_session(slot=0, rw=False, flags=None, pin=None):
    """C_OpenSession (serial, R/O unless rw; or flags) -> session handle; with a pin, C_Login
    as CKU_USER too (CKR_USER_ALREADY_LOGGED_IN accepted: the token is logged in already)."""
    h = c_ulong()
    f = flags if flags is not None else CKF_SERIAL_SESSION | (CKF_RW_SESSION if rw else 0)
    ck(C_OpenSession(slot, f, None, None, byref(h)), "C_OpenSession")
    if pin is not None:
        login(h.value, pin, ok=(CKR_OK, CKR_USER_ALREADY_LOGGED_IN))
    return h.value


def login(h, pin=b"any", user=CKU_USER, ok=(CKR_OK,)):
    """C_Login; returns the CK_RV (one of ok)."""
    pin = pin.encode() if isinstance(pin, str) else pin
    return ck(C_Login(h, user, pin, len(pin)), "C_Login", ok)


def find_attrs(h, *attrs, limit=64):
    """Handles of the objects matching the CK_ATTRIBUTEs attrs (made by A; none: all)."""
    t, n = T(*attrs)
    ck(C_FindObjectsInit(h, t if n else None, n), "C_FindObjectsInit")
    objs = (c_ulong * limit)()
    cnt = c_ulong()
    ck(C_FindObjects(h, objs, limit, byref(cnt)), "C_FindObjects")
    ck(C_FindObjectsFinal(h), "C_FindObjectsFinal")
    return list(objs[:cnt.value])


def find_objects(h, pairs=(), limit=64):
    """Handles of the objects matching (type, value) pairs (values as for A)."""
    return find_attrs(h, *[A(t, v) for t, v in pairs], limit=limit)


def find_label(h, label, cls=None, limit=64):
    """Handles of the objects with CKA_LABEL label (and CKA_CLASS cls)."""
    pairs = [(CKA_LABEL, label.encode() if isinstance(label, str) else label)]
    if cls is not None:
        pairs.append((CKA_CLASS, cls))
    return find_objects(h, pairs, limit)


def find_one(h, label, cls=CKO_PRIVATE_KEY):
    """The one object with CKA_LABEL label and CKA_CLASS cls (an AssertionError otherwise)."""
    objs = find_label(h, label, cls)
    assert len(objs) == 1, "find %s (class %d): %d objects" % (label, cls, len(objs))
    return objs[0]


def attr_rv(h, obj, t, strict=False):
    """C_GetAttributeValue of one attribute (length query, then value) -> (rv, bytes or None);
    strict: a value call failing after a length query that worked raises P11Error."""
    a = CK_ATTRIBUTE(t, None, 0)
    rv = C_GetAttributeValue(h, obj, byref(a), 1)
    if rv != CKR_OK:
        return rv, None
    buf = ctypes.create_string_buffer(max(1, a.ulValueLen))
    a.pValue = ctypes.cast(buf, c_void_p)
    rv = C_GetAttributeValue(h, obj, byref(a), 1)
    if strict:
        ck(rv, "C_GetAttributeValue(0x%x) after its length query" % t)
    return rv, buf.raw[:a.ulValueLen] if rv == CKR_OK else None


def get_attr(h, obj, t):
    """One attribute's value (bytes); P11Error when C_GetAttributeValue fails."""
    rv, v = attr_rv(h, obj, t, strict=True)
    ck(rv, "C_GetAttributeValue(0x%x)" % t)
    return v


def attr_or_rv(h, obj, t):
    """One attribute's value (bytes), or the CK_RV (an int) when its length query fails."""
    rv, v = attr_rv(h, obj, t, strict=True)
    return v if rv == CKR_OK else rv


def set_attrs(h, obj, *attrs):
    """C_SetAttributeValue with the CK_ATTRIBUTEs attrs -> CK_RV."""
    t, n = T(*attrs)
    return C_SetAttributeValue(h, obj, t, n)


def create_object(h, *attrs):
    """C_CreateObject with the CK_ATTRIBUTEs attrs -> (rv, handle)."""
    t, n = T(*attrs)
    ho = c_ulong()
    rv = C_CreateObject(h, t, n, byref(ho))
    return rv, ho.value


def generate_key_pair(h, m, pub, priv):
    """C_GenerateKeyPair (mechanism m without parameters; pub and priv: lists of CK_ATTRIBUTEs)
    -> (rv, public key handle, private key handle)."""
    mm = CK_MECHANISM(m, None, 0)
    tp, np_ = T(*pub)
    tv, nv = T(*priv)
    hp, hv = c_ulong(), c_ulong()
    rv = C_GenerateKeyPair(h, byref(mm), tp, np_, tv, nv, byref(hp), byref(hv))
    return rv, hp.value, hv.value


def expect(what, got, want):
    """AssertionError naming what, got and want (CK_RVs by name) unless got == want."""
    if got != want:
        raise AssertionError("%s: got %s, want %s" % (
            what, rv_name(got) if isinstance(got, int) else got,
            rv_name(want) if isinstance(want, int) else want))


def attr_ul(h, obj, t):
    """A CK_ULONG attribute as an int, None when C_GetAttributeValue fails."""
    rv, v = attr_rv(h, obj, t)
    return int.from_bytes(v, sys.byteorder) if rv == CKR_OK else None


def attr_b(h, obj, t):
    """A CK_BBOOL attribute as True/False, None when C_GetAttributeValue fails."""
    rv, v = attr_rv(h, obj, t)
    return v == b"\x01" if rv == CKR_OK else None


# ---- mechanisms, two-call operations ----
def mech(m, param=None):
    """A CK_MECHANISM; param (a ctypes structure or buffer) is kept alive with it."""
    if param is None:
        return CK_MECHANISM(m, None, 0)
    r = CK_MECHANISM(m, ctypes.cast(byref(param), c_void_p), sizeof(param))
    r._keep = param
    return r


def gcm_mech(iv, aad, tag_bits=128):
    """CKM_AES_GCM with a 12-byte IV buffer (the HSM's IV is written back there) and AAD;
    returns the mechanism and what it points into (keep it alive)."""
    ivb = ctypes.create_string_buffer(iv, 12)
    aadb = ctypes.create_string_buffer(aad, max(len(aad), 1))
    g = CK_GCM_PARAMS(ctypes.cast(ivb, c_void_p), 12, 96, ctypes.cast(aadb, c_void_p), len(aad),
                      tag_bits)
    m = CK_MECHANISM(CKM_AES_GCM, ctypes.cast(byref(g), c_void_p), sizeof(g))
    return m, (ivb, aadb, g)


def iv_mech(m, iv):
    """A mechanism with a 16-byte IV parameter (AES-CBC[-PAD]); returns it and the IV buffer."""
    b = ctypes.create_string_buffer(iv, 16)
    return CK_MECHANISM(m, ctypes.cast(b, c_void_p), 16), b


def oaep_mech(hash_alg=CKM_SHA_1, mgf=CKG_MGF1_SHA1):
    """CKM_RSA_PKCS_OAEP; returns the mechanism and its parameters (keep them alive)."""
    o = CK_RSA_PKCS_OAEP_PARAMS(hash_alg, mgf, CKZ_DATA_SPECIFIED, None, 0)
    return CK_MECHANISM(CKM_RSA_PKCS_OAEP, ctypes.cast(byref(o), c_void_p), sizeof(o)), o


def one_shot(init, run, s, m, h, data):
    """init(s, m, h), then run's two-call convention (length query, then output)
    -> (rv, output or None)."""
    rv = init(s, byref(m), h)
    if rv != CKR_OK:
        return rv, None
    n = c_ulong(0)
    inb = ctypes.create_string_buffer(data, max(len(data), 1))
    rv = run(s, inb, len(data), None, byref(n))
    if rv != CKR_OK:
        return rv, None
    out = ctypes.create_string_buffer(max(n.value, 1))
    rv = run(s, inb, len(data), out, byref(n))
    return rv, out.raw[:n.value] if rv == CKR_OK else None


def encrypt(s, m, h, data):
    """C_EncryptInit + C_Encrypt (two calls) -> (rv, ciphertext or None)."""
    return one_shot(C_EncryptInit, C_Encrypt, s, m, h, data)


def decrypt(s, m, h, data):
    """C_DecryptInit + C_Decrypt (two calls) -> (rv, plaintext or None)."""
    return one_shot(C_DecryptInit, C_Decrypt, s, m, h, data)


def crypt_multi(init, upd, fin, s, m, h, parts):
    """init, then upd for each part (AES block-sized parts: no output expected from any), then
    fin's two-call convention -> (rv, output or None; rv -1: an update gave output)."""
    rv = init(s, byref(m), h)
    if rv != CKR_OK:
        return rv, None
    for p in parts:
        inb = ctypes.create_string_buffer(p, max(len(p), 1))
        out = ctypes.create_string_buffer(16)
        n = c_ulong(16)
        rv = upd(s, inb, len(p), out, byref(n))
        if rv != CKR_OK or n.value != 0:
            return rv if rv != CKR_OK else -1, None
    n = c_ulong(0)
    rv = fin(s, None, byref(n))
    if rv != CKR_OK:
        return rv, None
    out = ctypes.create_string_buffer(max(n.value, 1))
    rv = fin(s, out, byref(n))
    return rv, out.raw[:n.value] if rv == CKR_OK else None


def encrypt_multi(s, m, h, parts):
    """C_EncryptInit, C_EncryptUpdate per part, C_EncryptFinal -> (rv, ciphertext or None)."""
    return crypt_multi(C_EncryptInit, C_EncryptUpdate, C_EncryptFinal, s, m, h, parts)


def decrypt_multi(s, m, h, parts):
    """C_DecryptInit, C_DecryptUpdate per part, C_DecryptFinal -> (rv, plaintext or None)."""
    return crypt_multi(C_DecryptInit, C_DecryptUpdate, C_DecryptFinal, s, m, h, parts)


def wrap_key(s, m, hw, hk):
    """C_WrapKey of hk under hw (two calls) -> (rv, wrapped key or None)."""
    n = c_ulong(0)
    rv = C_WrapKey(s, byref(m), hw, hk, None, byref(n))
    if rv != CKR_OK:
        return rv, None
    out = ctypes.create_string_buffer(max(n.value, 1))
    rv = C_WrapKey(s, byref(m), hw, hk, out, byref(n))
    return rv, out.raw[:n.value] if rv == CKR_OK else None


def unwrap_key(s, m, hk, wrapped, pairs):
    """C_UnwrapKey of wrapped with hk into a key with the (type, value) pairs -> (rv, handle)."""
    t, n = template(pairs)
    wb = ctypes.create_string_buffer(wrapped, len(wrapped))
    h = c_ulong(0)
    rv = C_UnwrapKey(s, byref(m), hk, wb, len(wrapped), t, n, byref(h))
    return rv, h.value


def sign_rv(h, key, m, data, size=512):
    """C_SignInit + C_Sign into a size-byte buffer -> (rv of C_SignInit, rv of C_Sign or None,
    signature bytes)."""
    m = m if isinstance(m, CK_MECHANISM) else CK_MECHANISM(m, None, 0)
    rv = C_SignInit(h, byref(m), key)
    if rv:
        return rv, None, b""
    sig = ctypes.create_string_buffer(size)
    sl = c_ulong(size)
    rv = C_Sign(h, data, len(data), sig, byref(sl))
    return 0, rv, sig.raw[:sl.value] if rv == CKR_OK else b""


def sign(h, key, m, data, size=512):
    """The signature (bytes); P11Error when C_SignInit or C_Sign fails."""
    ri, rs, sig = sign_rv(h, key, m, data, size)
    ck(ri, "C_SignInit")
    ck(rs, "C_Sign")
    return sig


def sign_ecdsa(h, label):
    """CKM_ECDSA over 32 bytes with label's private key: a 64-byte signature or an error."""
    k = find_label(h, label, CKO_PRIVATE_KEY)
    assert len(k) == 1, k
    sig = sign(h, k[0], CKM_ECDSA, b"\x01" * 32, 64)
    assert len(sig) == 64, len(sig)
    return sig


# ---- checking signatures (python3-cryptography), flag files shared with the shell ----
def verify_sha256(pub, data, sig):
    """True when sig over data (SHA-256; RSA PKCS#1 v1.5, or ECDSA as raw r||s) verifies with
    pub, a python-cryptography public key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
    try:
        if isinstance(pub, rsa.RSAPublicKey):
            pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            n = (pub.curve.key_size + 7) // 8
            if len(sig) != 2 * n:
                return False
            der = utils.encode_dss_signature(int.from_bytes(sig[:n], "big"),
                                             int.from_bytes(sig[n:], "big"))
            pub.verify(der, data, ec.ECDSA(hashes.SHA256()))
        return True
    except Exception:
        return False


def wait_flag(d, f, tries=900):
    """Waits (0.1 s steps) until the file d/f exists; exits the process after tries steps."""
    for _ in range(tries):
        if os.path.exists(os.path.join(d, f)):
            return
        time.sleep(0.1)
    raise SystemExit("timed out waiting for " + f)


def set_flag(d, f):
    """Creates the (empty) file d/f."""
    open(os.path.join(d, f), "w").close()
