// Worker briefs arrive with their own issue; this package builds empty until then.
export {};
