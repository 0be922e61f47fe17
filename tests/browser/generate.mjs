// A generated workflow of `count` KSampler nodes (every widget set) in a 40-column grid,
// each row chained latent -> latent: the shape the canvas counters and benchmark use.
export function generateWorkflow(count = 1000, columns = 40) {
  const nodes = {};
  for (let index = 0; index < count; index += 1) {
    const id = `s${index}`;
    const inputs = { seed: index, steps: 20, cfg: 7, sampler: "euler", scheduler: "normal", denoise: 1 };
    if (index % columns !== 0) inputs.latent = { node: `s${index - 1}`, output: "latent" };
    nodes[id] = {
      type: "sampling.ksampler",
      inputs,
      ui: { pos: [(index % columns) * 300, Math.floor(index / columns) * 340] },
    };
  }
  return { schema: "latentloom/workflow", version: 1, nodes, groups: [], meta: { title: `${count} samplers` } };
}
