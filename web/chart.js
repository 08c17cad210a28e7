/*
 * A small time-series chart on <canvas>: one average line with a shaded min-max band,
 * drawn only from the points it is given (no seed points, no smoothing, no extrapolation).
 * Redraws are coalesced into one animation frame; the canvas follows its CSS size and the
 * device pixel ratio.
 */
'use strict';
(function () {
  const AF = (window.AF = window.AF || {});

  // The smallest of 1, 2, 2.5, 5 x 10^n that is at least raw.
  function niceStep(raw) {
    const p = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 2.5, 5]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  class Chart {
    // opts: unit, min/max (fixed axis bounds, else fitted), pad (headroom for fitted bounds),
    // color, windowMs (how much history to show), gapMs (a longer gap breaks the line).
    constructor(canvas, opts) {
      this.c = canvas;
      this.o = Object.assign({ unit: '', min: null, max: null, pad: 0, color: '#4ea1ff', windowMs: 15 * 60 * 1000, gapMs: 30000 }, opts || {});
      this.points = [];
      this.pending = false;
      if (window.ResizeObserver) new ResizeObserver(() => this.schedule()).observe(canvas);
      else window.addEventListener('resize', () => this.schedule());
      this.schedule();
    }

    set(points) {
      this.points = points;
      this.schedule();
    }

    schedule() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.draw();
      });
    }

    draw() {
      const c = this.c;
      const w = c.clientWidth;
      const h = c.clientHeight;
      if (!w || !h) return; // hidden view: drawn again when shown
      const dpr = window.devicePixelRatio || 1;
      if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
      }
      const g = c.getContext('2d');
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, w, h);
      const css = getComputedStyle(c);
      const fg = css.getPropertyValue('--chart-fg').trim() || '#9aa4b2';
      const grid = css.getPropertyValue('--chart-grid').trim() || 'rgba(255,255,255,0.08)';
      g.font = '11px system-ui, sans-serif';

      const o = this.o;
      const all = this.points;
      if (!all.length) {
        g.fillStyle = fg;
        g.textAlign = 'center';
        g.textBaseline = 'middle';
        g.fillText('Waiting for data…', w / 2, h / 2);
        return;
      }
      const tMax = all[all.length - 1].t;
      const tMin0 = Math.max(all[0].t, tMax - o.windowMs);
      const pts = all.filter((p) => p.t >= tMin0);
      // At least 10 s of axis, so the first few samples do not stretch across the whole plot.
      const tMin = Math.min(tMin0, tMax - 10000);

      let lo = Infinity;
      let hi = -Infinity;
      for (const p of pts) {
        lo = Math.min(lo, p.min, p.avg);
        hi = Math.max(hi, p.max, p.avg);
      }
      // Fitted bounds snap to a round step so the grid lines get round labels.
      let yMin = o.min !== null ? o.min : lo - o.pad;
      let yMax = o.max !== null ? Math.max(o.max, hi) : hi + o.pad;
      if (yMax - yMin < 4) yMax = yMin + 4;
      const step = niceStep((yMax - yMin) / 4);
      if (o.min === null) yMin = Math.floor(yMin / step) * step;
      yMax = o.max !== null && yMax <= o.max ? o.max : Math.ceil(yMax / step) * step;

      const L = 40;
      const R = 10;
      const T = 16;
      const B = 20;
      const pw = w - L - R;
      const ph = h - T - B;
      const X = (t) => L + ((t - tMin) / (tMax - tMin || 1)) * pw;
      const Y = (v) => T + ph - ((v - yMin) / (yMax - yMin)) * ph;

      // Grid and axis labels.
      g.strokeStyle = grid;
      g.fillStyle = fg;
      g.lineWidth = 1;
      g.textAlign = 'right';
      g.textBaseline = 'middle';
      for (let v = yMin; v <= yMax + step / 1000; v += step) {
        const y = Math.round(Y(v)) + 0.5;
        g.beginPath();
        g.moveTo(L, y);
        g.lineTo(w - R, y);
        g.stroke();
        g.fillText(Number.isInteger(Math.round(v * 1000) / 1000) ? v.toFixed(0) : v.toFixed(1), L - 4, y);
      }
      g.textAlign = 'center';
      g.textBaseline = 'top';
      for (let i = 0; i <= 3; i++) {
        const t = tMin + ((tMax - tMin) * i) / 3;
        const x = L + (pw * i) / 3;
        g.textAlign = i === 0 ? 'left' : i === 3 ? 'right' : 'center';
        g.fillText(new Date(t).toLocaleTimeString('en-GB', { hour12: false }), x, T + ph + 5);
      }

      // Split into runs where the daemon sent samples without a long gap.
      const runs = [];
      let run = [];
      for (const p of pts) {
        if (run.length && p.t - run[run.length - 1].t > o.gapMs) {
          runs.push(run);
          run = [];
        }
        run.push(p);
      }
      if (run.length) runs.push(run);

      for (const r of runs) {
        // min-max band
        g.beginPath();
        r.forEach((p, i) => (i ? g.lineTo(X(p.t), Y(p.max)) : g.moveTo(X(p.t), Y(p.max))));
        for (let i = r.length - 1; i >= 0; i--) g.lineTo(X(r[i].t), Y(r[i].min));
        g.closePath();
        g.globalAlpha = 0.18;
        g.fillStyle = o.color;
        g.fill();
        g.globalAlpha = 1;
        // average line (a lone point is drawn as a dot)
        g.strokeStyle = o.color;
        g.fillStyle = o.color;
        g.lineWidth = 2;
        if (r.length === 1) {
          g.beginPath();
          g.arc(X(r[0].t), Y(r[0].avg), 3, 0, 2 * Math.PI);
          g.fill();
        } else {
          g.beginPath();
          r.forEach((p, i) => (i ? g.lineTo(X(p.t), Y(p.avg)) : g.moveTo(X(p.t), Y(p.avg))));
          g.stroke();
        }
      }

      const last = pts[pts.length - 1];
      g.fillStyle = fg;
      g.textAlign = 'right';
      g.textBaseline = 'top';
      g.fillText('now: avg ' + last.avg.toFixed(1) + ' ' + o.unit + '  (min ' + last.min.toFixed(1) + ', max ' + last.max.toFixed(1) + ')', w - R, 1);
    }
  }

  AF.Chart = Chart;
})();
