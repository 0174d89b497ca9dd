/**
 * How layers join `genesis up`: each layer contributes a {@link FabricPlugin} that attaches its
 * per-node services to the embedded fabric before it starts and reports a few counters for the
 * status line. Plugins are listed in `plugins/index.ts`.
 */
import type { EmbeddedFabric } from '../core/index.ts';

/** Options of `genesis up` that plugins may read. */
export interface UpOptions {
  readonly dataDir: string;
  readonly interplanetary: boolean;
  readonly verbose: boolean;
}

/** A layer's contribution to `genesis up`. */
export interface FabricPlugin {
  /** Short name shown in the status line, e.g. `kernel`. */
  readonly name: string;
  /** Attaches services to nodes; called once, before the fabric starts. */
  attach(fabric: EmbeddedFabric, options: UpOptions): void | Promise<void>;
  /** Called after the fabric has started (background work such as training rounds). */
  afterStart?(fabric: EmbeddedFabric): void | Promise<void>;
  /** A few counters for the status line and the `--json` summary. */
  status(): Readonly<Record<string, number | string>>;
  /** Called before the fabric stops. */
  stop?(): void | Promise<void>;
}

/** Builds a plugin for one run of `genesis up`. */
export type FabricPluginFactory = (options: UpOptions) => FabricPlugin;
