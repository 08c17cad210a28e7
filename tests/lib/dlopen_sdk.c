/*
 * dlopen-safety of the shared libraries: this program does not link them. It loads
 * libagentaflow.so (argv[1]) with dlopen, traces through function pointers (provider, memory
 * exporter, a span ended on a second thread, read back), loads libagentaflow-platform.so
 * (argv[2]) with RTLD_NOW so every symbol it needs must resolve, then dlcloses both and lets
 * the tracing thread exit afterwards: its thread-exit destructor must still be safe to run.
 */
#include <agentaflow/export.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef int (*provider_new_fn)(const af_tracer_provider_opts *, af_tracer_provider **);
typedef void (*provider_free_fn)(af_tracer_provider *);
typedef int (*memory_new_fn)(size_t, af_exporter **, af_memory_exporter **);
typedef int (*simple_new_fn)(af_exporter *, af_span_processor **);
typedef int (*add_processor_fn)(af_tracer_provider *, af_span_processor *);
typedef af_tracer *(*get_tracer_fn)(af_tracer_provider *, const char *, const char *, const char *);
typedef af_span (*span_start_fn)(af_tracer *, const char *, const af_span_start_opts *);
typedef void (*span_set_string_fn)(af_span, const char *, const char *);
typedef void (*span_end_at_fn)(af_span, uint64_t);
typedef size_t (*snapshot_fn)(af_memory_exporter *, af_span_copy **, size_t);
typedef const af_span_data *(*copy_data_fn)(const af_span_copy *);
typedef void (*copy_release_fn)(af_span_copy *);

static struct {
    span_start_fn start;
    span_set_string_fn set_string;
    span_end_at_fn end_at;
    af_tracer *tracer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage; /* 1: the thread's span ended; 2: the libraries are closed, exit */
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void set_stage(int s)
{
    pthread_mutex_lock(&g.mu);
    g.stage = s;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
}

static void wait_stage(int s)
{
    pthread_mutex_lock(&g.mu);
    while (g.stage < s)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
}

static void *tracing_thread(void *arg)
{
    (void)arg;
    af_span s = g.start(g.tracer, "from-dlopen", NULL);
    g.set_string(s, "loaded.by", "dlopen");
    g.end_at(s, 0);
    set_stage(1);
    wait_stage(2);
    return NULL; /* the pool's thread-exit destructor runs now, after dlclose */
}

static void *sym(void *lib, const char *name)
{
    void *p = dlsym(lib, name);
    if (!p)
        fprintf(stderr, "dlsym %s: %s\n", name, dlerror());
    return p;
}

/* dlsym's object pointer into a function pointer: ISO C has no such conversion, POSIX
 * guarantees the representation, so copy the bytes. */
#define LOAD(var, lib, name)                                                                       \
    do {                                                                                           \
        void *p_ = sym(lib, name);                                                                 \
        memcpy(&(var), &p_, sizeof(var));                                                          \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s libagentaflow.so libagentaflow-platform.so\n", argv[0]);
        return 2;
    }
    if (dlsym(RTLD_DEFAULT, "af_tracer_provider_new")) {
        fprintf(stderr, "the test program must not link the SDK\n");
        return 1;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    provider_new_fn provider_new = NULL;
    LOAD(provider_new, lib, "af_tracer_provider_new");
    provider_free_fn provider_free = NULL;
    LOAD(provider_free, lib, "af_tracer_provider_free");
    memory_new_fn memory_new = NULL;
    LOAD(memory_new, lib, "af_memory_exporter_new");
    simple_new_fn simple_new = NULL;
    LOAD(simple_new, lib, "af_simple_processor_new");
    add_processor_fn add_processor = NULL;
    LOAD(add_processor, lib, "af_tracer_provider_add_processor");
    get_tracer_fn get_tracer = NULL;
    LOAD(get_tracer, lib, "af_tracer_provider_get_tracer");
    snapshot_fn snapshot = NULL;
    LOAD(snapshot, lib, "af_memory_exporter_snapshot");
    copy_data_fn copy_data = NULL;
    LOAD(copy_data, lib, "af_span_copy_data");
    copy_release_fn copy_release = NULL;
    LOAD(copy_release, lib, "af_span_copy_release");
    LOAD(g.start, lib, "af_span_start_impl");
    LOAD(g.set_string, lib, "af_span_set_string");
    LOAD(g.end_at, lib, "af_span_end_at");
    if (!provider_new || !provider_free || !memory_new || !simple_new || !add_processor ||
        !get_tracer || !snapshot || !copy_data || !copy_release || !g.start || !g.set_string ||
        !g.end_at)
        return 1;
    if (dlsym(lib, "af__span_rec_alloc")) {
        fprintf(stderr, "an internal af__ name is exported\n");
        return 1;
    }

    af_tracer_provider *p = NULL;
    af_exporter *e = NULL;
    af_memory_exporter *m = NULL;
    af_span_processor *proc = NULL;
    if (provider_new(NULL, &p) != 0 || memory_new(0, &e, &m) != 0 || simple_new(e, &proc) != 0 ||
        add_processor(p, proc) != 0)
        return 1;
    g.tracer = get_tracer(p, "dlopen-test", "1", NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, tracing_thread, NULL) != 0)
        return 1;
    wait_stage(1);

    af_span_copy *copies[4];
    size_t n = snapshot(m, copies, 4);
    int ok = n == 1;
    if (ok) {
        const af_span_data *d = copy_data(copies[0]);
        ok = strcmp(d->name, "from-dlopen") == 0 && d->n_attrs == 1 &&
             strcmp(d->attrs[0].key, "loaded.by") == 0 &&
             strcmp(d->attrs[0].v.s.ptr, "dlopen") == 0;
    }
    for (size_t i = 0; i < n; i++)
        copy_release(copies[i]);
    provider_free(p);

    void *platform = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (!platform || !sym(platform, "af_cost_tracker_new")) {
        fprintf(stderr, "dlopen %s: %s\n", argv[2],
                platform ? "no af_cost_tracker_new" : dlerror());
        return 1;
    }
    dlclose(platform);
    dlclose(lib);
    set_stage(2);
    pthread_join(th, NULL);
    printf("%s\n", ok ? "ok" : "span not read back");
    return ok ? 0 : 1;
}
