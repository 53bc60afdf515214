// The leader control plane arrives with its own issue; this package builds empty until then.
export {};
