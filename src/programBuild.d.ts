// Types of src/programBuild.js (plain JavaScript, so that the run-path wrapper needs no build).
export declare const OUT_DIR: string;
export declare const BUILD_FILES: string[];
export declare function hasBuildConfig(root: string): boolean;
export declare function manifestPath(root: string): string;
export declare function sourceFiles(root: string): string[];
export declare function staleness(root: string): string | undefined;
export declare function buildProgram(root: string): { files: number; ms: number };
export declare function ensureBuilt(
  root: string,
  say?: (line: string) => void,
): { built: boolean; reason?: string; files?: number; ms?: number };
