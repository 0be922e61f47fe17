/** Groups: titled, coloured rectangles behind nodes. Editor state only; never executed. */

import { uniqueId } from "./ids";
import type { GroupRecord, Rect } from "./records";
import type { Store } from "./store";

export function addGroup(store: Store, title: string, rect: Rect, color?: string): GroupRecord {
  return store.transact("Add group", (tx) => {
    const group: GroupRecord = {
      id: uniqueId(tx, "group"),
      title,
      rect,
      ...(color === undefined ? {} : { color }),
    };
    tx.put("group", group);
    return group;
  });
}

/** Ids of the nodes whose top-left corner lies inside the group (they move with it). */
export function nodesInGroup(store: Store, groupId: string): string[] {
  const group = store.get("group", groupId);
  if (group === undefined) return [];
  const [x, y, width, height] = group.rect;
  return [...store.list("node")]
    .filter((node) => node.pos[0] >= x && node.pos[0] <= x + width && node.pos[1] >= y && node.pos[1] <= y + height)
    .map((node) => node.id);
}
