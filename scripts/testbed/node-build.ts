// What a cluster with a node needs before it starts, built outside any namespace (the builds need the
// network): the control plane with the node's binaries, the pause image and the project's image.
import { buildPauseImage, buildProjectImage } from '../image/build.ts';
import { ensureNodeBinaries } from './binaries.ts';
import type { NodeStartOptions } from './node.ts';

export async function buildForNode(
  onProgress: (line: string) => void,
): Promise<Pick<NodeStartOptions, 'binDir' | 'pauseImage' | 'images'>> {
  const binDir = await ensureNodeBinaries(onProgress);
  const pauseImage = await buildPauseImage({ onProgress });
  const projectImage = await buildProjectImage({ onProgress });
  return { binDir, pauseImage, images: [projectImage] };
}
