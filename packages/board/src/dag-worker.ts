import { graphlib, layout } from '@dagrejs/dagre';
import { LONGEST_PATH_ABOVE, type LayoutRequest, type LayoutResult, NODE_H, NODE_W } from './dag-layout.ts';

// The DAG layout, off the page's thread: a 1,000-task graph takes dagre most of a second, and
// the page (kanban, timeline) stays usable meanwhile. Built into /assets/dag-worker.js.

function lay(req: LayoutRequest): LayoutResult {
  const started = performance.now();
  const g = new graphlib.Graph();
  g.setGraph({
    rankdir: 'LR',
    nodesep: 14,
    ranksep: 48,
    marginx: 8,
    marginy: 8,
    ranker: req.nodes.length > LONGEST_PATH_ABOVE ? 'longest-path' : 'network-simplex',
  });
  g.setDefaultEdgeLabel(() => ({}));
  for (const id of req.nodes) g.setNode(id, { width: NODE_W, height: NODE_H });
  for (const [task, dep] of req.edges) if (g.hasNode(task) && g.hasNode(dep)) g.setEdge(dep, task);
  // Past a few hundred nodes, dagre's extra ordering passes double the time for a little less crossing.
  layout(g, { disableOptimalOrderHeuristic: req.nodes.length > LONGEST_PATH_ABOVE });
  const nodes: LayoutResult['nodes'] = {};
  for (const id of g.nodes()) {
    const n = g.node(id);
    nodes[id] = { x: n.x ?? 0, y: n.y ?? 0 };
  }
  const edges = g.edges().map((e) => ({ from: e.v, to: e.w, points: (g.edge(e).points ?? []).map((p: { x: number; y: number }) => ({ x: p.x, y: p.y })) }));
  const graph = g.graph();
  return { id: req.id, width: graph.width ?? 0, height: graph.height ?? 0, nodes, edges, ms: performance.now() - started };
}

const scope = self as unknown as { onmessage: ((e: MessageEvent<LayoutRequest>) => void) | null; postMessage(m: LayoutResult): void };
scope.onmessage = (e) => scope.postMessage(lay(e.data));
