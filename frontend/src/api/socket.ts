/**
 * The websocket: events, previews and workflow sync on one connection. Reconnects with
 * backoff and resumes from the last event id it saw, so a blip loses no events; messages
 * sent while disconnected wait in a queue (workflow patches must not be dropped). When the
 * server cannot replay what was missed (it restarted, or the gap is too long) its hello says
 * `complete: false`: `onResync` then reloads job states, and the socket carries on from the
 * server's current id.
 */

import type { Event, PreviewHeader, WorkflowPatched, WorkflowWatching } from "./types";
import type { Json, JsonObject } from "../model";
import { parseJson, stringifyJson } from "../model/json-text";

export type { WorkflowPatched, WorkflowWatching };

export interface SocketHandlers {
  onEvent(event: Event, id: number): void;
  onPreview(header: PreviewHeader, jpeg: Blob): void;
  onWorkflowPatched(message: WorkflowPatched): void;
  onServerError(detail: string): void;
  onOpen(): void;
  /** Events were missed and cannot be replayed: reload what they would have changed. */
  onResync?(): void;
  /** The reply to a `workflow.watch`, with the document when the tab's revision is stale. */
  onWorkflowWatching?(message: WorkflowWatching): void;
}

export class EventSocket {
  private socket: WebSocket | undefined;
  private lastEventId: number | undefined;
  private readonly outbox: string[] = [];
  private retryMs = 250;
  private closed = false;
  /** How many times the server said events were lost (for tests). */
  resyncs = 0;

  constructor(private readonly handlers: SocketHandlers) {
    this.open();
  }

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  send(message: JsonObject): void {
    const text = stringifyJson(message); // workflow patches carry seeds: keep them exact
    if (this.connected) this.socket?.send(text);
    else this.outbox.push(text);
  }

  close(): void {
    this.closed = true;
    this.socket?.close();
  }

  private open(): void {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const resume = this.lastEventId === undefined ? "" : `&last_event_id=${this.lastEventId}`;
    const socket = new WebSocket(`${scheme}://${location.host}/ws?jobs=all${resume}`);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.retryMs = 250;
      this.handlers.onOpen();
      for (const text of this.outbox.splice(0)) socket.send(text);
    });
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", () => {
      if (this.closed) return;
      setTimeout(() => this.open(), this.retryMs);
      this.retryMs = Math.min(5000, this.retryMs * 2);
    });
  }

  private receive(data: unknown): void {
    if (data instanceof ArrayBuffer) {
      this.receivePreview(data);
      return;
    }
    if (typeof data !== "string") return;
    const message = parseJson(data) as { type?: string; [key: string]: Json | undefined };
    switch (message.type) {
      case "hello": {
        const resync = this.lastEventId !== undefined && message["complete"] === false;
        if ((this.lastEventId === undefined || resync) && typeof message["last_event_id"] === "number") this.lastEventId = message["last_event_id"];
        if (resync) {
          this.resyncs += 1;
          this.handlers.onResync?.();
        }
        break;
      }
      case "workflow.watching":
        this.handlers.onWorkflowWatching?.(message as unknown as WorkflowWatching);
        break;
      case "event":
        if (typeof message["id"] === "number") this.lastEventId = message["id"];
        this.handlers.onEvent(message["event"] as unknown as Event, Number(message["id"]));
        break;
      case "workflow.patched":
        this.handlers.onWorkflowPatched(message as unknown as WorkflowPatched);
        break;
      case "error":
        this.handlers.onServerError(String(message["detail"]));
        break;
      default:
        break;
    }
  }

  private receivePreview(buffer: ArrayBuffer): void {
    const view = new DataView(buffer);
    const length = view.getUint32(0);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length))) as PreviewHeader;
    this.handlers.onPreview(header, new Blob([new Uint8Array(buffer, 4 + length)], { type: "image/jpeg" }));
  }
}
