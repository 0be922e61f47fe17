/** Colours and fonts in one place, so the renderer and minimap agree. */

export const SOCKET_COLORS: Readonly<Record<string, string>> = {
  MODEL: "#b39ddb",
  CLIP: "#ffd54f",
  VAE: "#ef5350",
  CONDITIONING: "#ffa726",
  LATENT: "#f06292",
  IMAGE: "#64b5f6",
  MASK: "#81c784",
  SIGMAS: "#cddc39",
  NOISE: "#eeeeee",
  SAMPLER: "#ecb4b4",
  GUIDER: "#66ffff",
  CONTROL_NET: "#00d78d",
  CLIP_VISION: "#a1887f",
  CLIP_VISION_OUTPUT: "#ad7452",
  IPADAPTER: "#7e57c2",
  UPSCALE_MODEL: "#4fc3a1",
  INT: "#4db6ac",
  FLOAT: "#aed581",
  STRING: "#90a4ae",
  BOOLEAN: "#ce93d8",
  ENUM: "#bcaaa4",
};

export function socketColor(type: string | undefined): string {
  return (type === undefined ? undefined : SOCKET_COLORS[type]) ?? "#9e9e9e";
}

export const THEME = {
  background: "#1b1d22",
  grid: "#262930",
  nodeBody: "#2b2e36",
  nodeTitle: "#3a3e49",
  nodeBorder: "#4a4f5c",
  selected: "#4fc3f7",
  text: "#e6e6e6",
  muted: "#9aa0ac",
  widget: "#22252c",
  error: "#ef5350",
  running: "#66bb6a",
  cached: "#78909c",
  queued: "#ffb74d",
  group: "rgba(120, 144, 156, 0.18)",
  // Bypass is purple, as ComfyUI users know it.
  bypass: "#9c27b0",
  bypassBody: "#3a2a44",
  bypassTitle: "#5b2f6e",
  mutedBadge: "#616875",
  font: "12px system-ui, sans-serif",
  badgeFont: "bold 10px system-ui, sans-serif",
  titleFont: "bold 12px system-ui, sans-serif",
} as const;
