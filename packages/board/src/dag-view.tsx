import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Button, Empty, Loading, navigate } from './components.tsx';
import { type LayoutRequest, type LayoutResult, NODE_H, NODE_W } from './dag-layout.ts';
import { taskHref } from './router.ts';
import type { StatusTask } from './run-types.ts';
import { stateClass } from './states.ts';

let worker: Worker | undefined;
let nextId = 1;
const waiting = new Map<number, (r: LayoutResult | Error) => void>();

/** Lays a graph out in the DAG worker (one per page, started on first use). */
function layoutInWorker(nodes: string[], edges: [string, string][]): Promise<LayoutResult> {
  if (!worker) {
    worker = new Worker('/assets/dag-worker.js');
    worker.onmessage = (e: MessageEvent<LayoutResult>) => {
      waiting.get(e.data.id)?.(e.data);
      waiting.delete(e.data.id);
    };
    worker.onerror = (e) => {
      for (const done of waiting.values()) done(new Error(e.message || 'the layout worker failed'));
      waiting.clear();
      worker = undefined;
    };
  }
  const req: LayoutRequest = { id: nextId++, nodes, edges };
  return new Promise((resolve, reject) => {
    waiting.set(req.id, (r) => (r instanceof Error ? reject(r) : resolve(r)));
    worker?.postMessage(req);
  });
}

/** At most `n` characters, with an ellipsis when cut. */
function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** The arrowhead at an edge's end, as polygon points, pointing along its last segment. */
function arrowHead(points: { x: number; y: number }[]): string {
  const end = points[points.length - 1];
  const from = points[points.length - 2];
  if (!end || !from) return '';
  const len = Math.hypot(end.x - from.x, end.y - from.y) || 1;
  const ux = (end.x - from.x) / len;
  const uy = (end.y - from.y) / len;
  const size = 7;
  const bx = end.x - ux * size;
  const by = end.y - uy * size;
  const pts = [
    [end.x, end.y],
    [bx - uy * size * 0.5, by + ux * size * 0.5],
    [bx + uy * size * 0.5, by - ux * size * 0.5],
  ];
  return pts.map(([x, y]) => `${(x as number).toFixed(1)},${(y as number).toFixed(1)}`).join(' ');
}

/**
 * The run's task graph: dependencies left to right, nodes coloured by state, ready tasks ringed.
 * The layout is done in the worker and only again when the graph's shape (tasks, edges) changes;
 * a state change only recolours. A node is a link to its task's page.
 */
export function DagView({ run, tasks }: { run: string; tasks: StatusTask[] }) {
  const shape = useMemo(() => {
    const nodes = tasks.map((t) => t.id).sort();
    const edges: [string, string][] = tasks.flatMap((t) => t.depends_on.map((d) => [t.id, d] as [string, string])).sort();
    return { nodes, edges, key: `${nodes.join('\n')}\n\n${edges.map((e) => e.join(' ')).join('\n')}` };
  }, [tasks]);
  const stable = useRef(shape);
  if (stable.current.key !== shape.key) stable.current = shape;
  const [layout, setLayout] = useState<LayoutResult | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [scale, setScale] = useState(1);
  const box = useRef<HTMLDivElement>(null);

  // Keyed by the shape's text: a new array of the same shape does not lay out again.
  const { nodes, edges } = stable.current;
  useEffect(() => {
    if (nodes.length === 0) return;
    let live = true;
    layoutInWorker(nodes, edges).then(
      (r) => {
        if (!live) return;
        setLayout(r);
        setError(undefined);
      },
      (e: Error) => {
        if (live) setError(e.message);
      },
    );
    return () => {
      live = false;
    };
  }, [nodes, edges]);

  // A graph bigger than its box opens on its first node (the top-left corner may be empty space).
  const placed = useRef(false);
  useEffect(() => {
    const el = box.current;
    if (!layout || !el || placed.current) return;
    placed.current = true;
    let first: { x: number; y: number } | undefined;
    for (const p of Object.values(layout.nodes)) if (!first || p.x < first.x || (p.x === first.x && p.y < first.y)) first = p;
    if (first) {
      el.scrollLeft = Math.max(0, first.x - NODE_W / 2 - 16);
      el.scrollTop = Math.max(0, first.y - NODE_H / 2 - 16);
    }
  }, [layout]);

  if (tasks.length === 0)
    return (
      <Empty>
        No tasks yet: add one below, or with <code>orch task add</code>.
      </Empty>
    );
  if (error) return <Empty>The graph could not be laid out ({error}); the columns below show every task.</Empty>;
  if (!layout) return <Loading label={`Laying out ${tasks.length} tasks…`} />;

  const fit = () => {
    const w = box.current?.clientWidth ?? layout.width;
    setScale(Math.max(0.1, Math.min(1, (w - 4) / Math.max(1, layout.width))));
  };
  const byId = new Map(tasks.map((t) => [t.id, t]));
  return (
    <div class="dag">
      <div class="dag-tools">
        <Button onClick={() => setScale((s) => Math.max(0.1, s / 1.25))} aria-label="Zoom out">
          −
        </Button>
        <Button onClick={() => setScale((s) => Math.min(3, s * 1.25))} aria-label="Zoom in">
          +
        </Button>
        <Button onClick={fit}>Fit</Button>
        <span class="muted legend">
          <span class="legend-ready" aria-hidden="true" /> ready
        </span>
      </div>
      <div
        class="dag-box"
        ref={box}
        title="Ctrl + scroll to zoom"
        onWheel={(e) => {
          // Ctrl (or ⌘) + scroll zooms; a plain scroll scrolls, as everywhere else.
          if (!e.ctrlKey && !e.metaKey) return;
          e.preventDefault();
          setScale((s) => Math.min(3, Math.max(0.1, e.deltaY < 0 ? s * 1.1 : s / 1.1)));
        }}
      >
        <svg
          data-testid="dag"
          data-layout-ms={Math.round(layout.ms)}
          role="img"
          aria-label={`Task graph of ${run}: ${tasks.length} tasks`}
          width={Math.ceil(layout.width * scale)}
          height={Math.ceil(layout.height * scale)}
          viewBox={`0 0 ${Math.ceil(layout.width)} ${Math.ceil(layout.height)}`}
        >
          <g class="dag-edges">
            {layout.edges.map((e) => (
              <g key={`${e.from} ${e.to}`} data-testid="dag-edge" data-from={e.from} data-to={e.to} class="dag-edge">
                <path d={e.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')} />
                <polygon points={arrowHead(e.points)} />
              </g>
            ))}
          </g>
          <g class="dag-nodes">
            {Object.entries(layout.nodes).map(([id, p]) => {
              const t = byId.get(id);
              if (!t) return null;
              const ready = t.state === 'pending' && t.ready;
              return (
                <a
                  key={id}
                  href={taskHref(run, id)}
                  data-testid="dag-node"
                  data-task={id}
                  data-state={t.state}
                  data-ready={String(ready)}
                  class={`dag-node ${stateClass(ready ? 'ready' : t.state)} ${ready ? 'is-ready' : ''}`}
                  onClick={(e) => {
                    e.preventDefault();
                    navigate(taskHref(run, id));
                  }}
                >
                  <title>{`${id}: ${t.title} (${ready ? 'ready' : t.state})`}</title>
                  <g transform={`translate(${(p.x - NODE_W / 2).toFixed(1)},${(p.y - NODE_H / 2).toFixed(1)})`}>
                    <rect width={NODE_W} height={NODE_H} rx="5" />
                    <text x="8" y="14" class="dag-id">
                      {clip(id, 20)}
                    </text>
                    <text x="8" y="27" class="dag-title">
                      {clip(t.title, 24)}
                    </text>
                  </g>
                </a>
              );
            })}
          </g>
        </svg>
      </div>
    </div>
  );
}
