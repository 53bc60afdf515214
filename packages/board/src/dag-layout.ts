/** What the page sends the DAG worker: the graph's shape only (states do not move nodes). */
export interface LayoutRequest {
  id: number;
  nodes: string[];
  /** [task, dependsOn]: the edge is drawn from dependsOn to task (work flows left to right). */
  edges: [string, string][];
}

/** The worker's answer: each node's centre and each edge's polyline, in the graph's own units. */
export interface LayoutResult {
  id: number;
  width: number;
  height: number;
  nodes: Record<string, { x: number; y: number }>;
  edges: { from: string; to: string; points: { x: number; y: number }[] }[];
  ms: number;
}

export const NODE_W = 150;
export const NODE_H = 34;

/** dagre's network-simplex ranker is exact but slow past a few hundred nodes; longest-path stays fast. */
export const LONGEST_PATH_ABOVE = 150;
