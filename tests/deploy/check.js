'use strict';
// tests/deploy: renders deploy/kubernetes (the base and overlays/bind) and checks every object.
//
//   node check.js [--root DIR] [--kubectl PATH|none]   the check (CTest deploy.manifests)
//   node check.js --selftest [--root DIR]              breaks the render on purpose and expects
//                                                      each break to be reported (deploy.selftest)
//
// Rendering: render.js (the kustomize subset the manifests use). When kubectl with a built-in
// kustomize >= v4 is installed, `kubectl kustomize` renders too and both must give the same
// objects, which keeps render.js honest.
// Schemas: every Kubernetes object is validated with kubernetes-models (the published OpenAPI
// schemas, pinned in package-lock.json). Those schemas do not reject unknown fields, so the rules
// below also check that the fields that matter are where they should be.
// KubeSchedulerConfiguration is not an API object: it is checked field by field here, unknown
// fields included. So are the daemon's YAML files (against docs/configuration.md) and
// deploy/otel-collector.yaml.
// Exit 0: all good; 1: problems, each printed as "kind/name: problem"; 77: cannot run
// (node_modules missing: `npm ci` in tests/deploy failed), with the reason.
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

let YAML, renderer;
try {
  YAML = require('yaml');
  renderer = require('./render.js');
} catch (e) {
  console.log(`SKIP: the npm package "yaml" is not installed (npm ci in tests/deploy failed?): ${e.message}`);
  process.exit(77);
}
let kubernetesModelsError = null;
try {
  require.resolve('kubernetes-models/apps/v1/Deployment');
} catch (e) {
  kubernetesModelsError = e.message;
}

const argv = process.argv.slice(2);
function arg(name, def) {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : def;
}
const ROOT = path.resolve(arg('--root', path.join(__dirname, '..', '..')));
const K8S = path.join(ROOT, 'deploy', 'kubernetes');
const NS = 'agentaflow';
const SERVICE_HOST = 'agentaflow-scheduler.agentaflow.svc';

// ---------------------------------------------------------------------------------------------
// Schema validation (kubernetes-models)

function schemaProblems(obj) {
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : [null, obj.apiVersion];
  const mod = group ? `kubernetes-models/${group}/${version}/${obj.kind}` : `kubernetes-models/${version}/${obj.kind}`;
  let Model;
  try {
    Model = require(mod)[obj.kind];
  } catch (e) {
    return [`no schema for ${obj.apiVersion} ${obj.kind} in kubernetes-models`];
  }
  try {
    new Model(JSON.parse(JSON.stringify(obj))).validate();
    return [];
  } catch (e) {
    const errs = e.errors || e.validation || [];
    if (Array.isArray(errs) && errs.length)
      return errs.map((x) => `schema: ${x.instancePath || '/'} ${x.message}${x.params ? ' ' + JSON.stringify(x.params) : ''}`);
    return [`schema: ${e.message}`];
  }
}

// ---------------------------------------------------------------------------------------------
// Rules

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PriorityClass',
  'RuntimeClass', 'StorageClass', 'PersistentVolume', 'CustomResourceDefinition']);
const LONG_RUNNING = new Set(['Deployment', 'DaemonSet', 'StatefulSet']);
// Secrets and ConfigMaps the user creates (docs/kubernetes.md); nothing in the render defines them.
const EXTERNAL_SECRETS = new Set(['agentaflow-auth']);
const EXTERNAL_CONFIGMAPS = new Set(['otel-collector']);
const WRITE_VERBS = ['create', 'update', 'patch', 'delete', 'deletecollection', '*', 'escalate', 'bind', 'impersonate'];

function id(o) {
  return `${o.kind}/${(o.metadata && o.metadata.name) || '?'}`;
}

function find(objs, kind, name) {
  return objs.find((o) => o.kind === kind && o.metadata && o.metadata.name === name);
}

function containersOf(spec) {
  return [...(spec.initContainers || []), ...(spec.containers || [])];
}

function envOf(c, name) {
  return (c.env || []).find((e) => e.name === name);
}

function isDuration(v) {
  return typeof v === 'string' && /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/.test(v);
}

// The Extender and KubeSchedulerConfiguration fields of kubescheduler.config.k8s.io/v1.
const KSC_TOP = {
  apiVersion: 'string', kind: 'string', parallelism: 'number', leaderElection: 'object',
  clientConnection: 'object', healthzBindAddress: 'string', metricsBindAddress: 'string',
  enableProfiling: 'boolean', enableContentionProfiling: 'boolean', percentageOfNodesToScore: 'number',
  podInitialBackoffSeconds: 'number', podMaxBackoffSeconds: 'number', profiles: 'array',
  extenders: 'array', delayCacheUntilActive: 'boolean',
};
const KSC_LEADER = { leaderElect: 'boolean', leaseDuration: 'duration', renewDeadline: 'duration',
  retryPeriod: 'duration', resourceLock: 'string', resourceName: 'string', resourceNamespace: 'string' };
const KSC_PROFILE = { schedulerName: 'string', percentageOfNodesToScore: 'number', plugins: 'object',
  pluginConfig: 'array' };
const KSC_EXTENDER = { urlPrefix: 'string', filterVerb: 'string', preemptVerb: 'string',
  prioritizeVerb: 'string', weight: 'number', bindVerb: 'string', enableHTTPS: 'boolean',
  tlsConfig: 'object', httpTimeout: 'duration', nodeCacheCapable: 'boolean',
  managedResources: 'array', ignorable: 'boolean' };
const KSC_MANAGED = { name: 'string', ignoredByScheduler: 'boolean' };

function typeProblems(where, obj, fields, problems) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
    problems.push(`${where}: not a mapping`);
    return;
  }
  for (const [k, v] of Object.entries(obj)) {
    const t = fields[k];
    if (!t) problems.push(`${where}.${k}: unknown field`);
    else if (t === 'array' ? !Array.isArray(v)
      : t === 'duration' ? !isDuration(v)
        : t === 'object' ? (typeof v !== 'object' || v === null || Array.isArray(v))
          : typeof v !== t)
      problems.push(`${where}.${k}: must be ${t === 'duration' ? 'a duration string such as 5s' : t}, is ${JSON.stringify(v)}`);
  }
}

function kubeSchedulerConfigProblems(cfg, bind) {
  const p = [];
  typeProblems('config', cfg, KSC_TOP, p);
  if (cfg.apiVersion !== 'kubescheduler.config.k8s.io/v1') p.push(`config.apiVersion: ${cfg.apiVersion}, want kubescheduler.config.k8s.io/v1`);
  if (cfg.kind !== 'KubeSchedulerConfiguration') p.push(`config.kind: ${cfg.kind}, want KubeSchedulerConfiguration`);
  if (cfg.leaderElection) typeProblems('config.leaderElection', cfg.leaderElection, KSC_LEADER, p);
  const profiles = Array.isArray(cfg.profiles) ? cfg.profiles : [];
  profiles.forEach((pr, i) => typeProblems(`config.profiles[${i}]`, pr, KSC_PROFILE, p));
  if (!profiles.some((pr) => pr && pr.schedulerName === 'agentaflow')) p.push('config.profiles: no profile with schedulerName agentaflow');
  const exts = Array.isArray(cfg.extenders) ? cfg.extenders : [];
  if (exts.length !== 1) p.push(`config.extenders: ${exts.length} extenders, want the agentaflow one`);
  exts.forEach((x, i) => {
    const w = `config.extenders[${i}]`;
    typeProblems(w, x, KSC_EXTENDER, p);
    if (x.urlPrefix !== `http://${SERVICE_HOST}:9000/scheduler`) p.push(`${w}.urlPrefix: ${x.urlPrefix}, want http://${SERVICE_HOST}:9000/scheduler (the Service)`);
    if (x.filterVerb !== 'filter') p.push(`${w}.filterVerb: want filter`);
    if (x.prioritizeVerb !== 'prioritize') p.push(`${w}.prioritizeVerb: want prioritize`);
    if (x.prioritizeVerb && !(Number.isInteger(x.weight) && x.weight > 0)) p.push(`${w}.weight: a positive integer is required with prioritizeVerb`);
    if (bind && x.bindVerb !== 'bind') p.push(`${w}.bindVerb: want bind in the bind overlay`);
    if (!bind && x.bindVerb !== undefined) p.push(`${w}.bindVerb: set, but only the bind overlay may bind`);
    if (x.nodeCacheCapable !== true) p.push(`${w}.nodeCacheCapable: want true`);
    if (x.ignorable !== true) p.push(`${w}.ignorable: want true (a dead extender must not stop scheduling)`);
    if (!x.httpTimeout) p.push(`${w}.httpTimeout: missing`);
    const mr = Array.isArray(x.managedResources) ? x.managedResources : [];
    mr.forEach((m, j) => typeProblems(`${w}.managedResources[${j}]`, m, KSC_MANAGED, p));
    if (!mr.some((m) => m && m.name === 'nvidia.com/gpu' && m.ignoredByScheduler === false))
      p.push(`${w}.managedResources: want {name: nvidia.com/gpu, ignoredByScheduler: false}`);
  });
  return p;
}

// The keys documented in docs/configuration.md, and those that the cluster work adds.
function documentedKeys() {
  const keys = new Set();
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'configuration.md'), 'utf8');
  for (const m of doc.matchAll(/^\| `([a-z0-9_.]+)` \|/gm)) keys.add(m[1]);
  return keys;
}
const PENDING_KEYS = new Set(['server.data_dir', 'cluster.bind', 'cluster.node_timeout',
  'cluster.reservation_ttl', 'agent.report_interval', 'agent.scheduler_url']);
const MAP_KEYS = new Set(['tracing.exporters.otlp_http.headers', 'resource_attributes']);

function leafKeys(v, prefix, out) {
  if (v && typeof v === 'object' && !Array.isArray(v) && !MAP_KEYS.has(prefix)) {
    for (const [k, x] of Object.entries(v)) leafKeys(x, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push(prefix);
  }
  return out;
}

function daemonConfigProblems(name, text, notes) {
  const p = [];
  let cfg;
  try {
    cfg = YAML.parse(text);
  } catch (e) {
    return [`${name}: not YAML: ${e.message}`];
  }
  const known = documentedKeys();
  for (const k of leafKeys(cfg, '', [])) {
    if (known.has(k)) continue;
    if (PENDING_KEYS.has(k)) notes.add(`${k} (in ${name}) is not in docs/configuration.md yet: the cluster work adds it`);
    else p.push(`${name}: ${k} is not a key of docs/configuration.md`);
  }
  const s = cfg.server || {};
  if (s.bind_address !== '0.0.0.0') p.push(`${name}: server.bind_address must be 0.0.0.0 (pods are reached by IP)`);
  if (s.metrics_port !== 9001) p.push(`${name}: server.metrics_port must be 9001`);
  const otlp = ((cfg.tracing || {}).exporters || {}).otlp_http || {};
  if (otlp.enabled && !/^http:\/\/otel-collector\.agentaflow\.svc:4318\/v1\/traces$/.test(otlp.endpoint || ''))
    p.push(`${name}: tracing.exporters.otlp_http.endpoint must be the collector's http://otel-collector.agentaflow.svc:4318/v1/traces`);
  return p;
}

function rules(objs, opts) {
  const problems = [];
  const notes = opts.notes || new Set();
  const add = (o, msg) => problems.push(`${id(o)}: ${msg}`);
  const example = !!opts.example;

  for (const o of objs) {
    const md = o.metadata || {};
    if (!md.name) add(o, 'no metadata.name');
    // Namespaces: everything in agentaflow, except the kube-scheduler's auth reader binding.
    if (!CLUSTER_SCOPED.has(o.kind) && !example) {
      const allowed = o.kind === 'RoleBinding' && md.name === 'agentaflow-kube-scheduler-auth-reader' ? 'kube-system' : NS;
      if (md.namespace !== allowed) add(o, `namespace ${md.namespace}, want ${allowed}`);
    }
    if (!example && !(md.labels && md.labels['app.kubernetes.io/part-of'] === 'agentaflow'))
      add(o, 'no label app.kubernetes.io/part-of: agentaflow');
    if (o.kind === 'Secret') add(o, 'a Secret in the manifests: tokens are created by the user, never committed');

    // RBAC: no write verbs except the bind overlay's two.
    if (o.kind === 'ClusterRole' || o.kind === 'Role') {
      for (const r of o.rules || []) {
        const writes = (r.verbs || []).filter((v) => WRITE_VERBS.includes(v));
        if (!writes.length) continue;
        const bindRule = opts.bind && md.name === 'agentaflow-scheduler-bind' &&
          ((r.resources || []).join() === 'pods/binding' && writes.join() === 'create' ||
           (r.resources || []).join() === 'pods' && writes.join() === 'patch');
        if (!bindRule) add(o, `grants ${writes.join(',')} on ${(r.resources || []).join(',')}${opts.bind ? '' : ' outside the bind overlay'}`);
      }
    }
    if (o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding') {
      const ref = o.roleRef || {};
      if (ref.name && !ref.name.startsWith('system:') && ref.name !== 'extension-apiserver-authentication-reader' &&
          !find(objs, ref.kind, ref.name)) add(o, `roleRef ${ref.kind}/${ref.name} is not defined`);
      for (const s of o.subjects || [])
        if (s.kind === 'ServiceAccount' && !find(objs, 'ServiceAccount', s.name)) add(o, `subject ServiceAccount/${s.name} is not defined`);
    }

    // Workloads.
    const tmpl = o.spec && (o.spec.template || (o.spec.jobTemplate && o.spec.jobTemplate.spec.template));
    if (!tmpl) continue;
    const spec = tmpl.spec || {};
    if (spec.serviceAccountName && !find(objs, 'ServiceAccount', spec.serviceAccountName))
      add(o, `serviceAccountName ${spec.serviceAccountName} is not defined`);
    const podSc = spec.securityContext || {};
    for (const c of containersOf(spec)) {
      const w = `container ${c.name}`;
      const img = renderer.splitImage(c.image || '');
      if (!img.digest && (!img.tag || img.tag === 'latest')) add(o, `${w}: image ${c.image} is not pinned (a tag other than latest, or a digest)`);
      const res = c.resources || {};
      for (const kind of ['requests', 'limits'])
        for (const r of ['cpu', 'memory'])
          if (!(res[kind] && res[kind][r])) add(o, `${w}: no resources.${kind}.${r}`);
      if (LONG_RUNNING.has(o.kind)) {
        for (const pr of ['livenessProbe', 'readinessProbe'])
          if (!c[pr]) add(o, `${w}: no ${pr}`);
      }
      const sc = c.securityContext || {};
      if (!(sc.runAsNonRoot === true || podSc.runAsNonRoot === true)) add(o, `${w}: runAsNonRoot is not true`);
      if (sc.allowPrivilegeEscalation !== false) add(o, `${w}: allowPrivilegeEscalation is not false`);
      if (!(sc.capabilities && (sc.capabilities.drop || []).includes('ALL'))) add(o, `${w}: capabilities do not drop ALL`);
      if (!example && sc.readOnlyRootFilesystem !== true) add(o, `${w}: readOnlyRootFilesystem is not true`);
      for (const e of c.env || []) {
        if (/TOKEN|PASSWORD|SECRET/.test(e.name) && e.value !== undefined) add(o, `${w}: ${e.name} has a literal value; use a secretKeyRef`);
        const ref = e.valueFrom && e.valueFrom.secretKeyRef;
        if (ref && !EXTERNAL_SECRETS.has(ref.name) && !find(objs, 'Secret', ref.name)) add(o, `${w}: env ${e.name} refers to Secret ${ref.name}, which is neither rendered nor documented`);
      }
      // Probes of our daemon go to /health with a loopback Host (docs/security.md's Host gate).
      if ((c.image || '').includes('agentaflow'))
        for (const pr of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
          const g = c[pr] && c[pr].httpGet;
          if (!g) continue;
          if (g.path !== '/health') add(o, `${w}: ${pr} path ${g.path}, want /health`);
          if (!(g.httpHeaders || []).some((h) => h.name === 'Host' && h.value === 'localhost'))
            add(o, `${w}: ${pr} sends no Host: localhost (the kubelet's pod-IP Host is refused with 421)`);
          if (typeof g.port === 'string' && !(c.ports || []).some((p) => p.name === g.port)) add(o, `${w}: ${pr} port ${g.port} is not a container port`);
        }
    }
    for (const v of spec.volumes || []) {
      if (v.configMap && !EXTERNAL_CONFIGMAPS.has(v.configMap.name) && !find(objs, 'ConfigMap', v.configMap.name))
        add(o, `volume ${v.name}: ConfigMap ${v.configMap.name} is not rendered`);
      if (v.persistentVolumeClaim && !find(objs, 'PersistentVolumeClaim', v.persistentVolumeClaim.claimName))
        add(o, `volume ${v.name}: PersistentVolumeClaim ${v.persistentVolumeClaim.claimName} is not rendered`);
    }
    const ann = tmpl.metadata && tmpl.metadata.annotations || {};
    if (ann['prometheus.io/scrape'] === 'true') {
      const port = Number(ann['prometheus.io/port']);
      if (!containersOf(spec).some((c) => (c.ports || []).some((p) => p.containerPort === port)))
        add(o, `prometheus.io/port ${ann['prometheus.io/port']} is no container port`);
      if (!ann['prometheus.io/path']) add(o, 'no prometheus.io/path');
    }
  }

  if (example) return problems;

  // The agent.
  const ds = find(objs, 'DaemonSet', 'agentaflow-agent');
  if (!ds) problems.push('DaemonSet/agentaflow-agent: missing');
  else {
    const spec = ds.spec.template.spec;
    const c = spec.containers[0];
    if ((spec.nodeSelector || {})['nvidia.com/gpu.present'] !== 'true') problems.push('DaemonSet/agentaflow-agent: no nodeSelector nvidia.com/gpu.present: "true"');
    if (!(spec.tolerations || []).some((t) => t.key === 'nvidia.com/gpu' && t.operator === 'Exists' && t.effect === 'NoSchedule'))
      problems.push('DaemonSet/agentaflow-agent: no toleration for the nvidia.com/gpu NoSchedule taint');
    if (spec.runtimeClassName !== 'nvidia') problems.push('DaemonSet/agentaflow-agent: runtimeClassName is not nvidia (NVML comes from the NVIDIA container runtime)');
    const nn = envOf(c, 'NODE_NAME');
    if (!(nn && nn.valueFrom && nn.valueFrom.fieldRef && nn.valueFrom.fieldRef.fieldPath === 'spec.nodeName'))
      problems.push('DaemonSet/agentaflow-agent: NODE_NAME does not come from the downward API (fieldRef spec.nodeName)');
    if (!(envOf(c, 'NVIDIA_VISIBLE_DEVICES') || {}).value) problems.push('DaemonSet/agentaflow-agent: no NVIDIA_VISIBLE_DEVICES');
    if (!/utility|all/.test((envOf(c, 'NVIDIA_DRIVER_CAPABILITIES') || {}).value || '')) problems.push('DaemonSet/agentaflow-agent: NVIDIA_DRIVER_CAPABILITIES lacks utility (NVML)');
    const a = c.args || [];
    if (a[0] !== 'agent') problems.push('DaemonSet/agentaflow-agent: args do not start with `agent`');
    if (a[a.indexOf('--scheduler') + 1] !== `http://${SERVICE_HOST}:9000` || a.indexOf('--scheduler') < 0)
      problems.push(`DaemonSet/agentaflow-agent: --scheduler is not http://${SERVICE_HOST}:9000`);
    configFileProblems(objs, ds, c, 'agent.yaml', problems, notes);
    const cm = find(objs, 'ConfigMap', 'agentaflow-config');
    let acfg = {};
    try {
      acfg = YAML.parse(cm.data['agent.yaml']) || {};
    } catch (e) { /* reported by configFileProblems */ }
    if ((acfg.server || {}).gpu_backend !== 'nvml')
      problems.push('ConfigMap/agentaflow-config agent.yaml: server.gpu_backend must be nvml (a GPU node must not fall back to simulated GPUs)');
  }

  // The cluster scheduler.
  const dep = find(objs, 'Deployment', 'agentaflow-scheduler');
  if (!dep) problems.push('Deployment/agentaflow-scheduler: missing');
  else {
    const c = dep.spec.template.spec.containers[0];
    if (dep.spec.replicas !== 1) problems.push('Deployment/agentaflow-scheduler: replicas must be 1 (SQLite has one writer)');
    if (!dep.spec.strategy || dep.spec.strategy.type !== 'Recreate') problems.push('Deployment/agentaflow-scheduler: strategy must be Recreate (the old pod must release the data directory)');
    const a = c.args || [];
    if (a[0] !== 'serve' || !a.includes('--cluster')) problems.push('Deployment/agentaflow-scheduler: args are not `serve --cluster ...`');
    const tok = envOf(c, 'AGENTAFLOW_AUTH_TOKEN');
    if (!(tok && tok.valueFrom && tok.valueFrom.secretKeyRef)) problems.push('Deployment/agentaflow-scheduler: AGENTAFLOW_AUTH_TOKEN does not come from a Secret');
    const dataVol = (dep.spec.template.spec.volumes || []).find((v) => v.persistentVolumeClaim);
    const mount = dataVol && (c.volumeMounts || []).find((m) => m.name === dataVol.name);
    if (!mount) problems.push('Deployment/agentaflow-scheduler: no PersistentVolumeClaim mounted');
    configFileProblems(objs, dep, c, 'scheduler.yaml', problems, notes, mount && mount.mountPath);
    const svc = find(objs, 'Service', 'agentaflow-scheduler');
    if (!svc) problems.push('Service/agentaflow-scheduler: missing');
    else {
      const ports = Object.fromEntries((svc.spec.ports || []).map((p) => [p.name, p.port]));
      if (ports.http !== 9000 || ports.metrics !== 9001) problems.push('Service/agentaflow-scheduler: want ports http 9000 and metrics 9001');
      const labels = dep.spec.template.metadata.labels || {};
      if (!Object.entries(svc.spec.selector || {}).every(([k, v]) => labels[k] === v)) problems.push('Service/agentaflow-scheduler: selector does not match the scheduler pods');
    }
  }

  // The second kube-scheduler and its configuration.
  const ks = find(objs, 'Deployment', 'agentaflow-kube-scheduler');
  const kscm = find(objs, 'ConfigMap', 'agentaflow-kube-scheduler-config');
  if (!ks || !kscm) problems.push('Deployment or ConfigMap agentaflow-kube-scheduler(-config): missing');
  else {
    const c = ks.spec.template.spec.containers[0];
    if (!/^registry\.k8s\.io\/kube-scheduler:v[0-9]+\.[0-9]+\.[0-9]+$/.test(c.image)) problems.push(`Deployment/agentaflow-kube-scheduler: image ${c.image} is not a pinned registry.k8s.io/kube-scheduler:vX.Y.Z`);
    const flag = [...(c.command || []), ...(c.args || [])].find((x) => x.startsWith('--config='));
    const cfgPath = flag && flag.slice('--config='.length);
    const vol = (ks.spec.template.spec.volumes || []).find((v) => v.configMap && v.configMap.name === kscm.metadata.name);
    const m = vol && (c.volumeMounts || []).find((x) => x.name === vol.name);
    if (!cfgPath || !m || path.posix.dirname(cfgPath) !== m.mountPath || !(path.posix.basename(cfgPath) in kscm.data))
      problems.push('Deployment/agentaflow-kube-scheduler: --config does not name a key of the mounted agentaflow-kube-scheduler-config');
    let cfg = null;
    try {
      cfg = YAML.parse(kscm.data['config.yaml']);
    } catch (e) {
      problems.push(`ConfigMap/agentaflow-kube-scheduler-config: config.yaml is not YAML: ${e.message}`);
    }
    if (cfg) for (const x of kubeSchedulerConfigProblems(cfg, !!opts.bind)) problems.push(`KubeSchedulerConfiguration (ConfigMap/agentaflow-kube-scheduler-config): ${x}`);
    const sa = ks.spec.template.spec.serviceAccountName;
    for (const role of ['system:kube-scheduler', 'system:volume-scheduler'])
      if (!objs.some((o) => o.kind === 'ClusterRoleBinding' && o.roleRef.name === role && (o.subjects || []).some((s) => s.name === sa)))
        problems.push(`Deployment/agentaflow-kube-scheduler: ServiceAccount ${sa} is not bound to ${role}`);
  }
  return problems;
}

function configFileProblems(objs, owner, c, file, problems, notes, dataMount) {
  const a = c.args || [];
  const cfgPath = a[a.indexOf('--config') + 1];
  const vol = (owner.spec.template.spec.volumes || []).find((v) => v.configMap && v.configMap.name === 'agentaflow-config');
  const m = vol && (c.volumeMounts || []).find((x) => x.name === vol.name);
  const cm = find(objs, 'ConfigMap', 'agentaflow-config');
  if (a.indexOf('--config') < 0 || !m || !cm || cfgPath !== `${m.mountPath}/${file}` || !(file in cm.data)) {
    problems.push(`${id(owner)}: --config is not ${file} of the mounted ConfigMap agentaflow-config`);
    return;
  }
  for (const x of daemonConfigProblems(`ConfigMap/agentaflow-config ${file}`, cm.data[file], notes)) problems.push(x);
  let cfg;
  try {
    cfg = YAML.parse(cm.data[file]) || {};
  } catch (e) {
    return; // reported by daemonConfigProblems
  }
  if (dataMount && (cfg.server || {}).data_dir !== dataMount) problems.push(`ConfigMap/agentaflow-config ${file}: server.data_dir is not the volume's mount path ${dataMount}`);
}

// deploy/otel-collector.yaml: a pipeline whose parts are all defined, OTLP/HTTP on 4318.
function collectorProblems(text) {
  const p = [];
  const cfg = YAML.parse(text) || {};
  const http = (((cfg.receivers || {}).otlp || {}).protocols || {}).http;
  if (!http || !/:4318$/.test(http.endpoint || '')) p.push('receivers.otlp.protocols.http.endpoint is not on port 4318');
  const traces = ((cfg.service || {}).pipelines || {}).traces;
  if (!traces) return [...p, 'service.pipelines.traces is missing'];
  for (const part of ['receivers', 'processors', 'exporters']) {
    if (!Array.isArray(traces[part]) || !traces[part].length) p.push(`service.pipelines.traces.${part} is empty`);
    for (const name of traces[part] || []) if (!(cfg[part] || {})[name]) p.push(`service.pipelines.traces uses ${part.slice(0, -1)} ${name}, which is not defined`);
  }
  if (!(traces.processors || []).includes('batch')) p.push('no batch processor in the traces pipeline');
  for (const name of (cfg.service || {}).extensions || []) if (!(cfg.extensions || {})[name]) p.push(`service.extensions uses ${name}, which is not defined`);
  return p;
}

// The bind overlay's copies must be the base's files with only the bind settings changed.
function overlayDriftProblems() {
  const p = [];
  const load = (f) => YAML.parse(fs.readFileSync(path.join(K8S, f), 'utf8'));
  const base = load('base/config/scheduler.yaml');
  const over = load('overlays/bind/scheduler.yaml');
  base.cluster = { ...base.cluster, bind: true };
  if (JSON.stringify(base) !== JSON.stringify(over)) p.push('overlays/bind/scheduler.yaml differs from base/config/scheduler.yaml in more than cluster.bind: true');
  const kb = load('base/config/kube-scheduler-config.yaml');
  const ko = load('overlays/bind/kube-scheduler-config.yaml');
  kb.extenders = kb.extenders.map((x) => ({ ...x, bindVerb: 'bind' }));
  const sortKeys = (o) => JSON.stringify(o, (k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort()) : v));
  if (sortKeys(kb) !== sortKeys(ko)) p.push('overlays/bind/kube-scheduler-config.yaml differs from base/config/kube-scheduler-config.yaml in more than bindVerb: bind');
  return p;
}

// ---------------------------------------------------------------------------------------------
// kubectl, when it is there

function kubectlRender(kubectl, dir) {
  if (!kubectl || kubectl === 'none') return { skipped: 'kubectl not given' };
  let ver = '';
  try {
    ver = execFileSync(kubectl, ['version', '--client'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
  } catch (e) {
    return { skipped: `\`${kubectl} version --client\` failed` };
  }
  const m = /Kustomize Version: v([0-9]+)/.exec(ver);
  if (!m || Number(m[1]) < 4) return { skipped: `kubectl's built-in kustomize is older than v4 (${ver.trim().replace(/\n/g, '; ')})` };
  const out = execFileSync(kubectl, ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 });
  return { objs: YAML.parseAllDocuments(out).map((d) => d.toJS()).filter(Boolean) };
}

function canon(v) {
  if (Array.isArray(v)) return v.map(canon);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon(v[k])]));
  return v;
}

function compareRenders(label, mine, theirs) {
  const p = [];
  const a = new Map(mine.map((o) => [renderer.key(o), JSON.stringify(canon(o))]));
  const b = new Map(theirs.map((o) => [renderer.key(o), JSON.stringify(canon(o))]));
  for (const k of a.keys()) if (!b.has(k)) p.push(`${label}: ${k} rendered by render.js only`);
  for (const k of b.keys()) if (!a.has(k)) p.push(`${label}: ${k} rendered by kubectl kustomize only`);
  for (const [k, v] of a) if (b.has(k) && b.get(k) !== v) p.push(`${label}: ${k} differs between render.js and kubectl kustomize`);
  return p;
}

// ---------------------------------------------------------------------------------------------

function renderAll() {
  return {
    base: renderer.render(K8S),
    bind: renderer.render(path.join(K8S, 'overlays', 'bind')),
    examples: fs.readdirSync(path.join(K8S, 'examples')).filter((f) => /\.ya?ml$/.test(f)).sort()
      .flatMap((f) => renderer.parseDocs(path.join(K8S, 'examples', f))),
  };
}

function checkAll(r, notes, withSchemas = true) {
  const problems = [];
  for (const [label, objs, opts] of [['base', r.base, {}], ['overlays/bind', r.bind, { bind: true }], ['examples', r.examples, { example: true }]]) {
    for (const o of objs) if (withSchemas) for (const x of schemaProblems(o)) problems.push(`${label}: ${id(o)}: ${x}`);
    for (const x of rules(objs, { ...opts, notes })) problems.push(`${label}: ${x}`);
  }
  const job = r.examples.find((o) => o.kind === 'Job');
  if (!job) problems.push('examples: no training Job');
  else {
    const t = job.spec.template;
    const ann = t.metadata.annotations || {};
    if (t.spec.schedulerName !== 'agentaflow') problems.push('examples: Job/' + job.metadata.name + ': schedulerName is not agentaflow');
    if (!t.spec.containers.some((c) => ((c.resources || {}).limits || {})['nvidia.com/gpu'])) problems.push(`examples: Job/${job.metadata.name}: no nvidia.com/gpu limit`);
    if (!/^[0-9]+$/.test(ann['agentaflow.io/gpu-memory-mb'] || '')) problems.push(`examples: Job/${job.metadata.name}: agentaflow.io/gpu-memory-mb is not a number of MiB on the pod template`);
    if (!/^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(ann['agentaflow.io/traceparent'] || '')) problems.push(`examples: Job/${job.metadata.name}: agentaflow.io/traceparent is not a W3C traceparent on the pod template`);
  }
  return problems;
}

function main() {
  if (kubernetesModelsError) {
    console.log(`SKIP: kubernetes-models is not installed, so nothing can be validated against the Kubernetes schemas (npm ci in tests/deploy failed?): ${kubernetesModelsError}`);
    process.exit(77);
  }
  const notes = new Set();
  let r;
  try {
    r = renderAll();
  } catch (e) {
    console.log(`FAIL render: ${e.message}`);
    process.exit(1);
  }
  const problems = checkAll(r, notes);
  problems.push(...overlayDriftProblems());
  problems.push(...collectorProblems(fs.readFileSync(path.join(ROOT, 'deploy', 'otel-collector.yaml'), 'utf8')).map((x) => `deploy/otel-collector.yaml: ${x}`));
  const kubectl = arg('--kubectl', 'none');
  for (const [label, dir, mine] of [['base', K8S, r.base], ['overlays/bind', path.join(K8S, 'overlays', 'bind'), r.bind]]) {
    let k;
    try {
      k = kubectlRender(kubectl, dir);
    } catch (e) {
      problems.push(`${label}: kubectl kustomize failed: ${(e.stderr || e.message).toString().trim()}`);
      continue;
    }
    if (k.skipped) console.log(`note: ${label}: not compared with kubectl kustomize: ${k.skipped}`);
    else {
      problems.push(...compareRenders(label, mine, k.objs));
      console.log(`${label}: kubectl kustomize renders the same ${k.objs.length} objects`);
    }
  }
  for (const n of notes) console.log(`note: ${n}`);
  const count = r.base.length + r.bind.length + r.examples.length;
  if (problems.length) {
    for (const x of problems) console.log(`FAIL ${x}`);
    console.log(`${problems.length} problems in ${count} objects`);
    process.exit(1);
  }
  console.log(`ok: ${r.base.length} objects in the base, ${r.bind.length} in overlays/bind, ${r.examples.length} in examples: schemas and rules pass`);
}

// Each break must be reported; the pristine render must not be.
function selftest() {
  const notes = new Set();
  const fresh = () => JSON.parse(JSON.stringify(renderAll()));
  const ds = (r) => r.base.find((o) => o.kind === 'DaemonSet');
  const sched = (r) => r.base.find((o) => o.kind === 'Deployment' && o.metadata.name === 'agentaflow-scheduler');
  const ksc = (r, f) => {
    const cm = r.base.find((o) => o.metadata.name === 'agentaflow-kube-scheduler-config');
    const cfg = YAML.parse(cm.data['config.yaml']);
    f(cfg);
    cm.data['config.yaml'] = YAML.stringify(cfg);
  };
  const cases = [
    ['an image on :latest', (r) => { ds(r).spec.template.spec.containers[0].image = 'ghcr.io/agentaflow/agentaflow:latest'; }, 'not pinned'],
    ['an image without a tag', (r) => { sched(r).spec.template.spec.containers[0].image = 'ghcr.io/agentaflow/agentaflow'; }, 'not pinned'],
    ['a schema type error', (r) => { sched(r).spec.replicas = 'one'; }, 'schema: /spec/replicas'],
    ['a missing required field', (r) => { delete ds(r).spec.selector; }, 'schema:'],
    ['no liveness probe', (r) => { delete ds(r).spec.template.spec.containers[0].livenessProbe; }, 'no livenessProbe'],
    ['no memory limit', (r) => { delete sched(r).spec.template.spec.containers[0].resources.limits.memory; }, 'no resources.limits.memory'],
    ['NODE_NAME from the wrong field', (r) => { ds(r).spec.template.spec.containers[0].env.find((e) => e.name === 'NODE_NAME').valueFrom.fieldRef.fieldPath = 'metadata.name'; }, 'NODE_NAME does not come'],
    ['no GPU node selector', (r) => { delete ds(r).spec.template.spec.nodeSelector; }, 'nodeSelector nvidia.com/gpu.present'],
    ['a rolling scheduler', (r) => { sched(r).spec.strategy = { type: 'RollingUpdate' }; }, 'Recreate'],
    ['a token in the manifests', (r) => { r.base.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'agentaflow-auth', namespace: NS, labels: { 'app.kubernetes.io/part-of': 'agentaflow' } }, stringData: { token: 'x' } }); }, 'a Secret in the manifests'],
    ['bind rights in the base', (r) => { r.base.find((o) => o.kind === 'ClusterRole').rules.push({ apiGroups: [''], resources: ['pods/binding'], verbs: ['create'] }); }, 'outside the bind overlay'],
    ['bindVerb in the base', (r) => ksc(r, (c) => { c.extenders[0].bindVerb = 'bind'; }), 'only the bind overlay may bind'],
    ['a misspelt extender field', (r) => ksc(r, (c) => { c.extenders[0].nodeCacheCapabel = true; }), 'nodeCacheCapabel: unknown field'],
    ['a numeric httpTimeout', (r) => ksc(r, (c) => { c.extenders[0].httpTimeout = 5; }), 'httpTimeout: must be a duration'],
    ['the wrong extender URL', (r) => ksc(r, (c) => { c.extenders[0].urlPrefix = 'http://agentaflow.default.svc:9000/scheduler'; }), 'urlPrefix'],
    ['a probe without the loopback Host', (r) => { delete sched(r).spec.template.spec.containers[0].readinessProbe.httpGet.httpHeaders; }, 'Host: localhost'],
    ['an unknown daemon key', (r) => { const cm = r.base.find((o) => o.metadata.name === 'agentaflow-config'); const cfg = YAML.parse(cm.data['agent.yaml']); cfg.server.metrcs_port = 9001; cm.data['agent.yaml'] = YAML.stringify(cfg); }, 'not a key of docs/configuration.md'],
    ['a daemon config that is not YAML', (r) => { const cm = r.base.find((o) => o.metadata.name === 'agentaflow-config'); cm.data['scheduler.yaml'] += 'server:\n  port: 9000\n'; }, 'scheduler.yaml: not YAML'],
    ['simulated GPUs on GPU nodes', (r) => { const cm = r.base.find((o) => o.metadata.name === 'agentaflow-config'); cm.data['agent.yaml'] = cm.data['agent.yaml'].replace('gpu_backend: nvml', 'gpu_backend: auto'); }, 'gpu_backend must be nvml'],
    ['the wrong namespace', (r) => { ds(r).metadata.namespace = 'default'; }, 'namespace default'],
  ];
  let failed = 0;
  const pristine = checkAll(fresh(), notes);
  if (pristine.length) {
    failed++;
    console.log(`FAIL the pristine render has problems:\n  ${pristine.join('\n  ')}`);
  }
  for (const [what, breakIt, expect] of cases) {
    const r = fresh();
    breakIt(r);
    const got = checkAll(r, notes);
    if (got.some((x) => x.includes(expect))) console.log(`ok: ${what} -> ${got.find((x) => x.includes(expect))}`);
    else {
      failed++;
      console.log(`FAIL ${what}: no problem mentioning "${expect}"; got:\n  ${got.join('\n  ') || '(nothing)'}`);
    }
  }
  const ovr = collectorProblems('receivers: {otlp: {protocols: {http: {endpoint: "0.0.0.0:4318"}}}}\nservice: {pipelines: {traces: {receivers: [otlp], processors: [batch], exporters: [otlp]}}}\n');
  if (ovr.some((x) => x.includes('processor batch, which is not defined'))) console.log('ok: an undefined collector processor is reported');
  else { failed++; console.log(`FAIL collector check: ${ovr.join('; ')}`); }
  const passed = cases.length + 2 - failed;
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

if (argv.includes('--selftest')) {
  if (kubernetesModelsError) {
    console.log(`SKIP: kubernetes-models is not installed (npm ci in tests/deploy failed?): ${kubernetesModelsError}`);
    process.exit(77);
  }
  selftest();
} else {
  main();
}
