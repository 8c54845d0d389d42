// Colours for this pack's four socket types, so that model, content, motion and timeline
// wires can be told apart from each other and from ComfyUI's own types. Only looks: the
// nodes and workflows work the same where this script is not loaded.
import { app } from "../../../scripts/app.js";  // served at /extensions/<pack>/js/

// Chosen away from the core palette (MODEL lavender, IMAGE blue, LATENT pink, VAE red, ...).
export const SOCKET_COLOURS = {
  STYLEGAN_V_MODEL: "#9C27B0",
  STYLEGAN_V_CONTENT: "#E91E63",
  STYLEGAN_V_MOTION: "#00A896",
  STYLEGAN_V_TIMELINE: "#3D5AFE",
};

// The frontend reloads its colour palette on start and whenever the user switches theme, and
// each load first blanks every known type (then sets the palette's own). A property whose
// setter ignores the blank keeps our colour through that, while a palette that does name one
// of our types still wins.
function keepColour(table, type, colour) {
  let value = colour;
  Object.defineProperty(table, type, {
    configurable: true,
    enumerable: true,
    get: () => value,
    set: (next) => { if (next) value = next; },
  });
}

app.registerExtension({
  name: "stylegan_v.socket_colours",
  setup() {
    const LGraphCanvas = window.LGraphCanvas ?? app.canvas?.constructor;
    for (const [type, colour] of Object.entries(SOCKET_COLOURS)) {
      if (LGraphCanvas?.link_type_colors) keepColour(LGraphCanvas.link_type_colors, type, colour);
      if (app.canvas?.default_connection_color_byType) {
        keepColour(app.canvas.default_connection_color_byType, type, colour);
      }
    }
    // Nodes 2.0 (Vue nodes) read CSS variables that the palette sets on <body>; a stylesheet
    // rule is the fallback it leaves alone.
    const style = document.createElement("style");
    style.dataset.stylegan_v = "socket-colours";
    style.textContent = `body { ${Object.entries(SOCKET_COLOURS)
      .map(([type, colour]) => `--color-datatype-${type}: ${colour};`).join(" ")} }`;
    document.head.appendChild(style);
    app.canvas?.setDirty(true, true);
  },
});
