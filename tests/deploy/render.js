'use strict';
// A small kustomize renderer for tests/deploy: exactly the kustomization fields that
// deploy/kubernetes uses, so the manifests are checked where kubectl is not installed (Debian
// 12's kubernetes-client is 1.20, whose built-in kustomize predates `labels`). Anything else in
// a kustomization.yaml is an error here, not silently ignored; where kubectl (kustomize >= v4)
// is present, check.js also renders with it and requires the same objects.
//
// Supported: resources (files of one or more YAML documents, and directories with a
// kustomization.yaml, rendered recursively; the kustomize rule that a base may not contain the
// kustomization that includes it), labels (pairs on metadata.labels only: includeSelectors and
// includeTemplates must be false or absent), images (name -> newName/newTag/digest on every
// container and initContainer), configMapGenerator (files `key=path` or `path`, literals
// `key=value`, namespace, behavior create/merge/replace) and generatorOptions with
// disableNameSuffixHash: true (name hashes are not implemented).
const fs = require('fs');
const path = require('path');
const YAML = require('yaml');

class RenderError extends Error {}

function fail(dir, msg) {
  throw new RenderError(`${path.join(dir, 'kustomization.yaml')}: ${msg}`);
}

function parseDocs(file) {
  const text = fs.readFileSync(file, 'utf8');
  const out = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    if (doc.errors.length) throw new RenderError(`${file}: ${doc.errors[0].message}`);
    const v = doc.toJS();
    if (v === null || v === undefined) continue;
    if (typeof v !== 'object' || Array.isArray(v) || !v.kind || !v.apiVersion)
      throw new RenderError(`${file}: a document is not a Kubernetes object (apiVersion and kind)`);
    out.push(v);
  }
  return out;
}

function inside(dir, file) {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

const KNOWN = new Set(['apiVersion', 'kind', 'resources', 'labels', 'images', 'generatorOptions',
  'configMapGenerator']);

function podSpecs(obj) {
  const s = obj.spec || {};
  const specs = [];
  if (obj.kind === 'Pod') specs.push(s);
  if (s.template && s.template.spec) specs.push(s.template.spec);
  if (s.jobTemplate && s.jobTemplate.spec && s.jobTemplate.spec.template)
    specs.push(s.jobTemplate.spec.template.spec);
  return specs.filter(Boolean);
}

function splitImage(image) {
  // name[:tag][@digest]; a ':' before the last '/' is a registry port.
  let rest = image, digest = null, tag = null;
  const at = rest.indexOf('@');
  if (at >= 0) { digest = rest.slice(at + 1); rest = rest.slice(0, at); }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) { tag = rest.slice(colon + 1); rest = rest.slice(0, colon); }
  return { name: rest, tag, digest };
}

function key(o) {
  const m = o.metadata || {};
  return `${o.apiVersion}/${o.kind}/${m.namespace || ''}/${m.name}`;
}

function generate(dir, gen, existing, opts) {
  for (const k of Object.keys(gen))
    if (!['name', 'namespace', 'files', 'literals', 'behavior'].includes(k))
      fail(dir, `configMapGenerator field "${k}" is not supported by tests/deploy/render.js`);
  if (!opts || opts.disableNameSuffixHash !== true)
    fail(dir, 'generatorOptions.disableNameSuffixHash: true is required (name hashes are not implemented)');
  const data = {};
  for (const f of gen.files || []) {
    const eq = f.indexOf('=');
    const k = eq >= 0 ? f.slice(0, eq) : path.basename(f);
    const file = path.resolve(dir, eq >= 0 ? f.slice(eq + 1) : f);
    if (!inside(dir, file)) fail(dir, `${f}: outside the kustomization's directory (kustomize's load restrictor)`);
    if (k in data) fail(dir, `configMapGenerator ${gen.name}: key ${k} twice`);
    data[k] = fs.readFileSync(file, 'utf8');
  }
  for (const l of gen.literals || []) {
    const eq = l.indexOf('=');
    if (eq <= 0) fail(dir, `literal "${l}" is not key=value`);
    data[l.slice(0, eq)] = l.slice(eq + 1);
  }
  const behavior = gen.behavior || 'create';
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: gen.name }, data };
  if (gen.namespace) cm.metadata.namespace = gen.namespace;
  const idx = existing.findIndex((o) => key(o) === key(cm));
  if (behavior === 'create') {
    if (idx >= 0) fail(dir, `configMapGenerator ${gen.name}: exists already (use behavior: merge)`);
    existing.push(cm);
  } else if (behavior === 'merge' || behavior === 'replace') {
    if (idx < 0) fail(dir, `configMapGenerator ${gen.name}: behavior ${behavior} but no such ConfigMap in the resources`);
    if (behavior === 'merge') Object.assign(existing[idx].data, data);
    else existing[idx].data = data;
  } else {
    fail(dir, `configMapGenerator ${gen.name}: unknown behavior ${behavior}`);
  }
}

function render(dir, visiting = []) {
  dir = path.resolve(dir);
  for (const v of visiting)
    if (inside(dir, v)) throw new RenderError(`cycle: ${dir} contains ${v}, which includes it`);
  const kfile = path.join(dir, 'kustomization.yaml');
  if (!fs.existsSync(kfile)) throw new RenderError(`${dir}: no kustomization.yaml`);
  const k = YAML.parse(fs.readFileSync(kfile, 'utf8')) || {};
  for (const f of Object.keys(k))
    if (!KNOWN.has(f)) fail(dir, `field "${f}" is not supported by tests/deploy/render.js`);
  if (k.kind !== undefined && k.kind !== 'Kustomization') fail(dir, `kind ${k.kind}`);
  const objs = [];
  for (const r of k.resources || []) {
    const p = path.resolve(dir, r);
    if (!fs.existsSync(p)) fail(dir, `resource ${r} does not exist`);
    if (fs.statSync(p).isDirectory()) {
      objs.push(...render(p, [...visiting, dir]));
    } else {
      if (!inside(dir, p)) fail(dir, `${r}: a file outside the kustomization's directory`);
      objs.push(...parseDocs(p));
    }
  }
  const seen = new Set();
  for (const o of objs) {
    if (seen.has(key(o))) fail(dir, `${key(o)} appears twice`);
    seen.add(key(o));
  }
  for (const gen of k.configMapGenerator || []) generate(dir, gen, objs, k.generatorOptions);
  for (const l of k.labels || []) {
    if (l.includeSelectors || l.includeTemplates)
      fail(dir, 'labels with includeSelectors/includeTemplates are not supported by tests/deploy/render.js');
    for (const o of objs) {
      o.metadata = o.metadata || {};
      o.metadata.labels = { ...(o.metadata.labels || {}), ...l.pairs };
    }
  }
  for (const img of k.images || []) {
    for (const o of objs)
      for (const spec of podSpecs(o))
        for (const c of [...(spec.containers || []), ...(spec.initContainers || [])]) {
          const cur = splitImage(c.image || '');
          if (cur.name !== img.name) continue;
          const name = img.newName || cur.name;
          if (img.digest) c.image = `${name}@${img.digest}`;
          else if (img.newTag) c.image = `${name}:${img.newTag}`;
          else c.image = name + (cur.tag ? `:${cur.tag}` : '') + (cur.digest ? `@${cur.digest}` : '');
        }
  }
  return objs;
}

module.exports = { render, parseDocs, splitImage, podSpecs, key, RenderError };

if (require.main === module) {
  try {
    const objs = render(process.argv[2] || '.');
    process.stdout.write(objs.map((o) => YAML.stringify(o)).join('---\n'));
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
