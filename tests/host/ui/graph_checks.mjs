// In-page geometry of a loaded workflow, shared by export.mjs (which lays out a workflow and
// fits its saved view) and views.mjs (which checks what a user sees when it opens). Every
// function here is handed to page.evaluate, so each one is self-contained.

// Nodes (title bar included) and groups, in graph coordinates.
export function graphBoxes() {
  const title = window.LiteGraph.NODE_TITLE_HEIGHT;
  const nodes = window.app.graph._nodes.map((n) => ({
    kind: 'node', id: n.id, type: n.type, title: n.title,
    x: n.pos[0], y: n.pos[1] - title, w: n.size[0], h: n.size[1] + title,
  }));
  const groups = window.app.graph._groups.map((g) => ({
    kind: 'group', id: g.id, title: g.title, x: g._bounding[0], y: g._bounding[1], w: g._bounding[2], h: g._bounding[3],
  }));
  return [...nodes, ...groups];
}

// Which parts of each node and group the user cannot see: points of a grid over each box, in
// screen pixels, that fall outside the window or under something other than the graph canvas
// (top bar, tabs, side bar, floating run bar, minimap, a banner). Also the view scale, and
// whether the canvas draws text at that scale (below a threshold it draws low-quality boxes).
export function hiddenParts({ step = 8 } = {}) {
  const title = window.LiteGraph.NODE_TITLE_HEIGHT;
  const { scale, offset } = window.app.canvas.ds;
  const rect = window.app.canvas.canvas.getBoundingClientRect();
  const canvasEl = window.app.canvas.canvas;
  const seen = (x, y) => {
    if (x < 0 || y < 0 || x >= window.innerWidth || y >= window.innerHeight) return false;
    const el = document.elementFromPoint(x, y);
    return el === canvasEl || !!el?.closest?.('.dom-widget');  // a node's own DOM widget is part of it
  };
  const boxes = [
    ...window.app.graph._nodes.map((n) => ({ kind: 'node', title: n.title, b: [n.pos[0], n.pos[1] - title, n.size[0], n.size[1] + title] })),
    ...window.app.graph._groups.map((g) => ({ kind: 'group', title: g.title, b: [...g._bounding] })),
  ];
  const hidden = [];
  for (const { kind, title: name, b } of boxes) {
    const x0 = rect.left + (b[0] + offset[0]) * scale, y0 = rect.top + (b[1] + offset[1]) * scale;
    const x1 = x0 + b[2] * scale, y1 = y0 + b[3] * scale;
    const xs = [], ys = [];
    for (let x = x0; x < x1; x += step) xs.push(x);
    for (let y = y0; y < y1; y += step) ys.push(y);
    xs.push(x1 - 1); ys.push(y1 - 1);
    let missing = 0, first = null;
    for (const x of xs) for (const y of ys) if (!seen(x, y)) { missing += 1; first ??= [Math.round(x), Math.round(y)]; }
    if (missing) hidden.push({ kind, title: name, missing, of: xs.length * ys.length, first,
                               screen: [x0, y0, x1, y1].map(Math.round) });
  }
  window.app.canvas.updateLowQualityThreshold?.();
  return { hidden, scale, offset: [...offset], low_quality: !!window.app.canvas.low_quality,
           viewport: [window.innerWidth, window.innerHeight] };
}

// Lays out the graph: columns left to right, each a stack of blocks; a block is a group (a
// named step around its nodes, stacked) or a markdown note. Nodes take the column's width and
// the height the frontend computes for their widgets.
export function applyLayout(layout) {
  const { LiteGraph } = window;
  const graph = window.app.graph;
  const title = LiteGraph.NODE_TITLE_HEIGHT;
  const { pad, node_gap: nodeGap, block_gap: blockGap, column_gap: columnGap, group_font: groupFont } = layout.spacing;
  for (const g of [...graph._groups]) graph.remove(g);
  let x = 0;
  for (const column of layout.columns) {
    let y = column.top;
    for (const block of column.blocks) {
      if (block.note !== undefined) {
        const note = LiteGraph.createNode('MarkdownNote');
        graph.add(note);
        note.widgets[0].value = block.note;
        note.title = block.title;
        note.pos = [x, y + title];
        note.size = [column.width, block.height];
        y += title + block.height + blockGap;
        continue;
      }
      const group = new LiteGraph.LGraphGroup(block.step);
      group.font_size = groupFont;
      if (block.color) group.color = block.color;
      graph.add(group);
      const top = y;
      y += group.titleHeight + pad;
      for (const id of block.nodes) {
        const node = graph.getNodeById(Number(id)) ?? graph.getNodeById(id);
        if (!node) throw new Error(`layout names node ${id}, which the prompt lacks`);
        // A loader's preview (the picture, the video) sizes its node once loaded: keep that height.
        const own = (layout.preview_types ?? []).includes(node.type) ? node.size[1] : 0;
        node.size = [column.width - 2 * pad, Math.max(own, node.computeSize()[1])];
        node.pos = [x + pad, y + title];
        y += title + node.size[1] + nodeGap;
      }
      y += pad - nodeGap;
      group.pos = [x, top];
      group.size = [column.width, y - top];
      y += blockGap;
    }
    x += column.width + columnGap;
  }
  // Example workflows must reproduce: seeds stay fixed instead of randomising after each run.
  for (const node of graph._nodes) {
    for (const w of node.widgets ?? []) if (w.name === 'control_after_generate') w.value = 'fixed';
  }
  graph.setDirtyCanvas(true, true);
}

// The largest view scale (at most maxScale) at which the whole graph, placed below and right of
// the page's chrome, lies on visible canvas; sets it and returns it. The top-left corner of the
// window is the anchor, so a view that fits this window also fits any larger one.
export function fitView({ margin = 16, maxScale = 1, minScale = 0.3, step = 8 } = {}) {
  const title = window.LiteGraph.NODE_TITLE_HEIGHT;
  const canvasEl = window.app.canvas.canvas;
  const W = window.innerWidth, H = window.innerHeight;
  // Visibility mask on a coarse grid, taken once (the graph's own drawing lives in the canvas).
  const cols = Math.ceil(W / step), rows = Math.ceil(H / step), mask = new Uint8Array(cols * rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const el = document.elementFromPoint(c * step + step / 2, r * step + step / 2);
      mask[r * cols + c] = el === canvasEl || !!el?.closest?.('.dom-widget') ? 1 : 0;
    }
  }
  const clear = (x0, y0, x1, y1) => {
    if (x0 < margin || y0 < margin || x1 > W - margin || y1 > H - margin) return false;
    const c0 = Math.floor((x0 - margin) / step), c1 = Math.ceil((x1 + margin) / step);
    const r0 = Math.floor((y0 - margin) / step), r1 = Math.ceil((y1 + margin) / step);
    for (let r = Math.max(0, r0); r < Math.min(rows, r1); r++) {
      for (let c = Math.max(0, c0); c < Math.min(cols, c1); c++) if (!mask[r * cols + c]) return false;
    }
    return true;
  };
  const boxes = [
    ...window.app.graph._nodes.map((n) => [n.pos[0], n.pos[1] - title, n.size[0], n.size[1] + title]),
    ...window.app.graph._groups.map((g) => [...g._bounding]),
  ];
  const gx = Math.min(...boxes.map((b) => b[0])), gy = Math.min(...boxes.map((b) => b[1]));
  // The first visible column and row of the mask, where the graph's corner goes.
  let left = 0, top = 0;
  while (left < cols - 1 && !mask[Math.floor(rows / 2) * cols + left]) left++;
  while (top < rows - 1 && !mask[top * cols + Math.floor(cols / 2)]) top++;
  for (let scale = maxScale; scale >= minScale - 1e-9; scale -= 0.01) {
    for (let sy = top * step + margin; sy < H / 2; sy += step) {
      const sx = left * step + margin;
      const fits = boxes.every(([x, y, w, h]) => {
        const x0 = sx + (x - gx) * scale, y0 = sy + (y - gy) * scale;
        return clear(x0, y0, x0 + w * scale, y0 + h * scale);
      });
      if (fits) {
        const ds = window.app.canvas.ds;
        ds.scale = scale;
        ds.offset = [sx / scale - gx, sy / scale - gy];
        window.app.canvas.setDirty(true, true);
        return { scale, offset: [...ds.offset] };
      }
    }
  }
  throw new Error(`the graph does not fit a ${W}x${H} window at scale ${minScale} or more`);
}

// Wiring a reader can follow: every link runs left to right (its source ends left of its
// target), and no link passes behind a node's body or title. Links are the frontend's splines:
// control points max(30, distance/4) out of each slot, horizontally.
export function wiringProblems() {
  const title = window.LiteGraph.NODE_TITLE_HEIGHT;
  const graph = window.app.graph;
  const nodes = graph._nodes;
  const links = graph.links instanceof Map ? [...graph.links.values()] : Object.values(graph.links ?? {});
  const problems = [];
  for (const link of links) {
    const from = graph.getNodeById(link.origin_id), to = graph.getNodeById(link.target_id);
    if (!from || !to) continue;
    const name = `${from.title}.${from.outputs[link.origin_slot]?.name} -> ${to.title}.${to.inputs[link.target_slot]?.name}`;
    if (from.pos[0] + from.size[0] > to.pos[0]) problems.push(`${name} runs right to left`);
    const a = from.getConnectionPos(false, link.origin_slot), b = to.getConnectionPos(true, link.target_slot);
    const d = Math.max(30, Math.hypot(b[0] - a[0], b[1] - a[1]) * 0.25);
    const p = [a, [a[0] + d, a[1]], [b[0] - d, b[1]], b];
    for (let i = 1; i < 100; i++) {
      const t = i / 100, u = 1 - t;
      const x = u * u * u * p[0][0] + 3 * u * u * t * p[1][0] + 3 * u * t * t * p[2][0] + t * t * t * p[3][0];
      const y = u * u * u * p[0][1] + 3 * u * u * t * p[1][1] + 3 * u * t * t * p[2][1] + t * t * t * p[3][1];
      // The slots sit just inside their nodes' edges: the wire's first and last pixels are on them.
      if (Math.hypot(x - a[0], y - a[1]) < 24 || Math.hypot(x - b[0], y - b[1]) < 24) continue;
      const under = nodes.find((n) => x > n.pos[0] + 1 && x < n.pos[0] + n.size[0] - 1
                                      && y > n.pos[1] - title + 1 && y < n.pos[1] + n.size[1] - 1);
      if (under) { problems.push(`${name} passes behind ${under.title} at (${Math.round(x)}, ${Math.round(y)})`); break; }
    }
  }
  return problems;
}

// The colour the canvas gives each type's sockets (connected and not) and wires.
export function socketColours(types) {
  const canvas = window.app.canvas;
  const out = {};
  for (const type of types) {
    out[type] = {
      wire: window.LGraphCanvas.link_type_colors[type] || canvas.default_link_color,
      connected: canvas.colourGetter.getConnectedColor(type),
      disconnected: canvas.colourGetter.getDisconnectedColor(type),
    };
  }
  return out;
}
