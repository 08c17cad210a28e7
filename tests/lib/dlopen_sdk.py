"""libagentaflow.so from Python through ctypes (argv[1]): a provider with the memory
exporter, one span started and ended, read back. The interpreter does not link the SDK, so
this is dlopen() from a foreign runtime, the way language bindings load it."""
import ctypes
import sys

lib = ctypes.CDLL(sys.argv[1])


class Span(ctypes.Structure):  # af_span
    _fields_ = [("rec", ctypes.c_void_p), ("gen", ctypes.c_uint64)]


class SpanData(ctypes.Structure):  # the leading fields of af_span_data
    _fields_ = [
        ("trace_id", ctypes.c_uint8 * 16),
        ("span_id", ctypes.c_uint8 * 8),
        ("parent_span_id", ctypes.c_uint8 * 8),
        ("trace_flags", ctypes.c_uint8),
        ("has_parent", ctypes.c_bool),
        ("parent_is_remote", ctypes.c_bool),
        ("trace_state", ctypes.c_char_p),
        ("name", ctypes.c_char_p),
    ]


vp = ctypes.c_void_p
lib.af_tracer_provider_new.argtypes = [vp, ctypes.POINTER(vp)]
lib.af_memory_exporter_new.argtypes = [ctypes.c_size_t, ctypes.POINTER(vp), ctypes.POINTER(vp)]
lib.af_simple_processor_new.argtypes = [vp, ctypes.POINTER(vp)]
lib.af_tracer_provider_add_processor.argtypes = [vp, vp]
lib.af_tracer_provider_get_tracer.argtypes = [vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
lib.af_tracer_provider_get_tracer.restype = vp
lib.af_span_start_impl.argtypes = [vp, ctypes.c_char_p, vp]
lib.af_span_start_impl.restype = Span
lib.af_span_end_at.argtypes = [Span, ctypes.c_uint64]
lib.af_memory_exporter_total.argtypes = [vp]
lib.af_memory_exporter_total.restype = ctypes.c_uint64
lib.af_memory_exporter_snapshot.argtypes = [vp, ctypes.POINTER(vp), ctypes.c_size_t]
lib.af_memory_exporter_snapshot.restype = ctypes.c_size_t
lib.af_span_copy_data.argtypes = [vp]
lib.af_span_copy_data.restype = ctypes.POINTER(SpanData)
lib.af_span_copy_release.argtypes = [vp]
lib.af_tracer_provider_free.argtypes = [vp]

provider, exporter, memory, processor = vp(), vp(), vp(), vp()
assert lib.af_tracer_provider_new(None, ctypes.byref(provider)) == 0
assert lib.af_memory_exporter_new(0, ctypes.byref(exporter), ctypes.byref(memory)) == 0
assert lib.af_simple_processor_new(exporter, ctypes.byref(processor)) == 0
assert lib.af_tracer_provider_add_processor(provider, processor) == 0
tracer = lib.af_tracer_provider_get_tracer(provider, b"python", b"1", None)
assert tracer

span = lib.af_span_start_impl(tracer, b"from-python", None)
assert span.rec
lib.af_span_end_at(span, 0)
assert lib.af_memory_exporter_total(memory) == 1

copies = (vp * 2)()
assert lib.af_memory_exporter_snapshot(memory, copies, 2) == 1
data = lib.af_span_copy_data(copies[0]).contents
assert data.name == b"from-python", data.name
assert any(data.trace_id) and any(data.span_id) and not data.has_parent
lib.af_span_copy_release(copies[0])
lib.af_tracer_provider_free(provider)
print("ok")
