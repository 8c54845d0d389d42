// Shows each input's display name (declared with the node, in Python) as its widget and socket
// label. This frontend labels widgets by translation files or the input id only, and ids such as
// truncation_psi stay unchanged so saved workflows keep loading. Looks only: without this script
// the inputs show their ids and everything works the same.
import { app } from "../../../scripts/app.js";  // served at /extensions/<pack>/js/

const PREFIX = "StyleGANV_";

app.registerExtension({
  name: "stylegan_v.labels",
  beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData?.name?.startsWith(PREFIX)) return;
    const labels = {};
    for (const group of [nodeData.input?.required, nodeData.input?.optional]) {
      for (const [id, spec] of Object.entries(group ?? {})) {
        const name = spec?.[1]?.display_name;
        if (name && name !== id) labels[id] = name;
      }
    }
    if (!Object.keys(labels).length) return;
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = created?.apply(this, arguments);
      for (const widget of this.widgets ?? []) if (labels[widget.name]) widget.label = labels[widget.name];
      for (const input of this.inputs ?? []) if (labels[input.name]) input.label = labels[input.name];
      return result;
    };
  },
});
