/**
 * Where nodes without a saved position go: the grid the example workflows use (four columns,
 * 300 px apart, rows 260 px apart). Documents written by scripts often carry no `ui`; a
 * readable default beats stacking every node at the origin.
 */

import type { Vec2 } from "./records";

export const GRID_ORIGIN: Vec2 = [40, 60];
export const GRID_STEP: Vec2 = [300, 260];
export const GRID_COLUMNS = 4;

export function gridPosition(index: number): Vec2 {
  return [
    GRID_ORIGIN[0] + (index % GRID_COLUMNS) * GRID_STEP[0],
    GRID_ORIGIN[1] + Math.floor(index / GRID_COLUMNS) * GRID_STEP[1],
  ];
}
