/**
 * The editor application: builds the page (toolbar, tabs, canvas, side panels), loads the
 * catalog, connects the websocket and wires the parts together. Each part owns one concern;
 * this file only routes between them. `window.__latentloom` exposes read-only counters and
 * a few helpers for the browser tests and benchmarks.
 */

import { ApiError, api, outputUrl } from "../api/client";
import { EventSocket } from "../api/socket";
import { Interaction, type InteractionHost, type SearchFilter } from "../canvas/interaction";
import { Renderer } from "../canvas/renderer";
import { imageInputOf, type ActionSlot } from "../canvas/geometry";
import type { Viewport } from "../canvas/viewport";
import { WidgetEditor } from "../canvas/widget-editor";
import type { WidgetSlot } from "../canvas/geometry";
import { describeExport, exportWorkflow, type ExportFormat } from "../api/interop";
import { createNode, parseCatalog, placeholderOf, removeItems, setTitle, toWorkflow, type Catalog, type Vec2 } from "../model";
import { ContextMenu } from "../ui/context-menu";
import { askConfirm, askText } from "../ui/dialog";
import { HintBar } from "../ui/hint-bar";
import type { Hit } from "../canvas/hit-test";
import { arrange } from "../model/auto-layout-arrange";
import { boxFromLayout } from "../model/auto-layout-support";
import { isFirstVisit, missingNote, modelNeeds, openFirstRun } from "./first-run";
import { canvasMenu, groupMenu, linkMenu, nodeMenu, type MenuContext } from "./menus";
import { Gallery } from "../ui/gallery";
import { QueuePanel } from "../ui/queue-panel";
import { WorkersPanel } from "../ui/workers-panel";
import { SearchBox } from "../ui/search-box";
import { el, dropdown } from "../ui/dom";
import { Commands } from "./commands";
import type { DocumentTab } from "./document-tab";
import { exampleWorkflows } from "./examples";
import { KeyBindings, type Action } from "./keys";
import { Runner } from "./runner";
import { Workspace, message } from "./workspace";
import { PageGeometry } from "./page-geometry";
import { FILE_TYPES, openFile } from "./file-open";
import { KeysDialog } from "../ui/keys-dialog";
import { ImageActions } from "./image-actions";
import { SubgraphView } from "../ui/subgraph-view";
import { Lightbox } from "../ui/lightbox";
import { NodeResults } from "../ui/node-results";
import { LibraryPanel } from "../ui/library-panel";
import { ModelsLibrary, droppedModel, loaderFor, type Loader } from "../ui/library-models";
import { NodesLibrary } from "../ui/library-nodes";
import { WorkflowsLibrary } from "../ui/library-workflows";
import { libraryApi } from "../ui/library-api";
import { addComponent, componentOf, flattenSubgraphs, type Component } from "../model";
import { alignNodes, distributeNodes, type Alignment, type Axis } from "../model/align";
import { SettingsDialog } from "../ui/settings";
import { TouchGestures } from "../canvas/touch";
import { packLabel } from "../ui/library-nodes";
import { packOf } from "../canvas/preferences";
import type { MenuEntry } from "../ui/context-menu";
import { SubgraphCatalog, definitionOf, inlineSubgraphNode, makeSubgraphFromSelection } from "../model";

const KEYS_STORAGE = "latentloom.keys";

export class App implements InteractionHost {
  readonly renderer: Renderer;
  /** Client coordinates of what the canvas shows, for tests that click and drag. */
  readonly geometry: PageGeometry;
  readonly workspace: Workspace;
  readonly runner: Runner;
  readonly keys: KeyBindings;
  private readonly socket: EventSocket;
  private readonly commands: Commands;
  private readonly widgetEditor: WidgetEditor;
  private readonly search: SearchBox;
  private readonly queuePanel: QueuePanel;
  private readonly gallery: Gallery;
  readonly imageActions: ImageActions;
  private readonly tabBar = el("nav", { className: "tabs" });
  private readonly zoomReadout = el("button", { className: "zoom-readout", title: "Zoom (click: 100%)" });
  private readonly status = el("span", { className: "save-status" });
  private readonly toasts = el("div", { className: "toasts" });
  private readonly nodeMenu: ContextMenu;
  readonly hintBar: HintBar;
  private readonly queueOnChangeButton = el("button", { className: "toggle", text: "Queue on change", title: "Re-queue after every change (Alt+Q)", data: { action: "queue-on-change" } });
  private readonly subgraphView: SubgraphView;
  readonly lightbox: Lightbox;
  readonly results = new NodeResults();
  readonly library: LibraryPanel;
  readonly settings: SettingsDialog;
  private readonly filePicker = el("input", { className: "file-picker", data: { file: "open" } });
  private readonly previewImage = el("img", { className: "preview-image" });
  private readonly runsInput = el("input", { className: "runs", title: "Runs per queue" });
  private pointer: Vec2 = [200, 200];

  constructor(root: HTMLElement, readonly catalog: Catalog) {
    const canvasHost = el("div", { className: "canvas-host" });
    this.renderer = new Renderer(canvasHost);
    this.geometry = new PageGeometry(this.renderer, () => this.tab?.store);
    this.widgetEditor = new WidgetEditor(canvasHost, (input) => (input.choices_from === "inputs" ? this.imageActions.uploaded : []));
    this.search = new SearchBox(canvasHost);
    this.nodeMenu = new ContextMenu(canvasHost);
    this.subgraphView = new SubgraphView(catalog, { show: (tab) => this.show(tab), toast: (text) => this.toast(text) });
    canvasHost.append(this.subgraphView.element);
    this.keys = new KeyBindings(readKeys());
    this.imageActions = new ImageActions(root, (text) => this.toast(text));
    const clientId = crypto.randomUUID();
    this.socket = new EventSocket({
      onEvent: (event) => this.runner.onEvent(event),
      onPreview: (header, jpeg) => this.runner.onPreview(header, jpeg),
      onWorkflowPatched: (patched) => this.workspace.onPatched(patched),
      onServerError: (detail) => this.workspace.onServerError(detail),
      onOpen: () => this.workspace.rewatch(),
      onWorkflowWatching: (watching) => this.workspace.onWatching(watching),
      onResync: () => {
        void this.workspace.resync();
        this.queuePanel.refresh();
      },
    });
    this.workspace = new Workspace(catalog, this.socket, clientId, {
      onTabsChanged: () => {
        this.runner.forgetClosed();
        this.renderTabs();
      },
      onActiveChanged: (tab) => {
        this.subgraphView.closeAll();
        this.show(tab);
      },
      onRunChange: (tab) => {
        if (tab === this.workspace.active) this.renderer.markDirty();
      },
      onRemoteChange: () => undefined,
      onSaved: () => this.setStatus("saved"),
      toast: (text) => this.toast(text),
    });
    this.queuePanel = new QueuePanel((text) => this.toast(text));
    this.lightbox = new Lightbox({ open: (document, name) => void this.workspace.create(document, name), toast: (text) => this.toast(text) });
    root.append(this.lightbox.element);
    this.gallery = new Gallery(
      (document, name) => void this.workspace.create(document, name),
      (text) => this.toast(text),
      (images, index) => this.lightbox.show(images, index),
    );
    this.runner = new Runner(this.workspace, {
      onJobsChanged: () => this.queuePanel.refresh(),
      onNodeImages: (run, node, images) => void this.results.show(run, node, images).catch((error: unknown) => this.toast(message(error))),
      onImages: (images) => {
        this.gallery.add(images);
        const last = images.at(-1);
        if (last !== undefined) this.previewImage.src = outputUrl(last, true);
      },
      onPreview: (image, blob) => {
        image.close();
        const old = this.previewImage.src;
        this.previewImage.src = URL.createObjectURL(blob);
        if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      },
      toast: (text) => this.toast(text),
    });
    this.commands = new Commands(this.renderer, (ids) => this.select(ids), (text) => this.toast(text));
    new Interaction(this.renderer, this);
    new TouchGestures(this.renderer); // pinch-zoom and two-finger pan on touch screens
    this.hintBar = new HintBar(this.keys.bindings);
    canvasHost.append(this.hintBar.element);
    this.queueOnChangeButton.setAttribute("aria-pressed", "false");
    this.queueOnChangeButton.addEventListener("click", () => this.run("queueOnChange"));
    this.renderer.onViewChange = (view) => this.onView(view);
    canvasHost.append(
      el("div", { className: "canvas-controls" },
        this.zoomReadout,
        el("button", { text: "Fit", title: "Fit to view (.)", data: { action: "fit" }, onClick: () => this.run("fit") }),
      ),
    );
    this.zoomReadout.addEventListener("click", () => {
      const [width, height] = this.renderer.screenSize;
      const view = this.renderer.view;
      const centre = [(width / 2 - view.offset[0]) / view.scale, (height / 2 - view.offset[1]) / view.scale] as const;
      this.renderer.view = { scale: 1, offset: [width / 2 - centre[0], height / 2 - centre[1]] };
    });
    canvasHost.addEventListener("pointermove", (event) => {
      const box = canvasHost.getBoundingClientRect();
      this.pointer = [event.clientX - box.left, event.clientY - box.top];
    });
    this.listenForDrops(canvasHost);
    this.library = this.buildLibrary(canvasHost);
    this.settings = new SettingsDialog(() => this.renderer.markDirty(), (text) => this.toast(text));
    root.append(this.settings.element);
    void this.settings.load();
    void libraryApi.packs().then((found) => {
      for (const [type, pack] of Object.entries(found.packs)) packOf.set(type, packLabel(pack));
      this.renderer.markDirty();
    }, () => undefined);
    // A click on a node's result strip opens that image large.
    canvasHost.addEventListener("click", (event) => {
      const tab = this.tab;
      if (tab === undefined || event.button !== 0) return;
      const box = canvasHost.getBoundingClientRect();
      const view = this.renderer.view;
      const world: Vec2 = [(event.clientX - box.left - view.offset[0]) / view.scale, (event.clientY - box.top - view.offset[1]) / view.scale];
      const hit = this.results.at(tab.store, tab.run, world);
      if (hit !== undefined) this.lightbox.show(hit.images, hit.index);
    });
    root.append(this.toolbar(), this.tabBar, el("main", {}, canvasHost, this.sidebar()), this.toasts);
    addEventListener("keydown", (event) => this.onKey(event));
    this.onView(this.renderer.view);
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  get tab(): DocumentTab | undefined {
    return this.subgraphView.current ?? this.workspace.active;
  }

  async start(): Promise<void> {
    // A first visit opens the txt2img example rather than an empty grid.
    if (!isFirstVisit() || !(await openFirstRun(this.workspace).catch(() => false))) await this.workspace.restore();
  }

  // ---- InteractionHost ------------------------------------------------------------------

  select(ids: Iterable<string>): void {
    const tab = this.tab;
    if (tab === undefined) return;
    tab.selection = new Set(ids);
    this.renderer.setSelection(tab.selection);
  }

  openSearch(screen: Vec2, world: Vec2, filter?: SearchFilter): void {
    const tab = this.tab;
    if (tab === undefined) return;
    this.search.show(this.catalog, {
      at: screen,
      socketType: filter?.socketType,
      ...(filter === undefined ? {} : { direction: filter.direction }),
      pick: (result) => {
        tab.store.transact(`Add ${result.spec.display_name}`, () => {
          const node = createNode(tab.store, result.spec.id, [Math.round(world[0]), Math.round(world[1])]);
          if (filter !== undefined && result.socket !== undefined) filter.connect(node.id, result.socket);
          this.select([node.id]);
        });
      },
    });
  }

  editWidget(nodeId: string, widget: WidgetSlot): void {
    const tab = this.tab;
    if (tab === undefined) return;
    this.widgetEditor.edit(tab.store, nodeId, widget, this.renderer.view, () => tab.undo.breakMerge(), (text) => this.toast(text));
  }

  closeOverlays(): void {
    this.widgetEditor.close();
    this.search.close();
    this.nodeMenu.close();
  }

  /** The node's menu: each entry is one undoable step on the selection (which holds the node). */
  openNodeMenu(screen: Vec2, nodeId: string): void {
    const tab = this.tab;
    const node = tab?.store.get("node", nodeId);
    if (tab === undefined || node === undefined) return;
    const selected = [...tab.selection].filter((id) => tab.store.has("node", id));
    const nodes = selected.includes(nodeId) ? selected : [nodeId];
    const title = node.title ?? this.catalog.get(node.type)?.display_name ?? placeholderOf(node)?.classType ?? node.type;
    const spec = this.catalog.get(node.type);
    const image = spec === undefined ? undefined : imageInputOf(spec);
    const imageEntries = image === undefined ? [] : [
      { label: "Upload image…", run: () => this.imageActions.chooseFile(tab, nodeId, image) },
      { label: "Edit mask…", run: () => void this.imageActions.editMask(tab, nodeId, image) },
    ];
    this.nodeMenu.show(screen, nodes.length > 1 ? `${nodes.length} nodes` : title, nodeMenu(this.menuContext(tab), nodeId, nodes, [...imageEntries, ...this.subgraphEntries(tab, nodeId, nodes)]));
  }

  /** Right-click off a node: the link's, the group's or the canvas's menu. */
  openMenuAt(screen: Vec2, world: Vec2, hit: Hit): void {
    const tab = this.tab;
    if (tab === undefined) return;
    const context = this.menuContext(tab);
    if (hit.kind === "link") this.nodeMenu.show(screen, "Link", linkMenu(context, hit.link.id, world), "link");
    else if (hit.kind === "group") this.nodeMenu.show(screen, hit.group.title, groupMenu(context, hit.group.id), "group");
    else if (hit.kind === "empty") this.nodeMenu.show(screen, "Canvas", canvasMenu(context, world), "canvas");
  }

  private menuContext(tab: DocumentTab): MenuContext {
    return {
      tab,
      catalog: this.catalog,
      keys: this.keys.bindings,
      boxOf: (node) => boxFromLayout(this.renderer.layoutOf(node)),
      canPaste: this.commands.canPaste,
      select: (ids) => this.select(ids),
      addNode: (specId, world) => {
        const spec = this.catalog.get(specId);
        tab.store.transact(`Add ${spec?.display_name ?? specId}`, () => this.select([createNode(tab.store, specId, [Math.round(world[0]), Math.round(world[1])]).id]));
      },
      paste: (world) => this.commands.paste(tab, false, world),
      arrange: () => this.run("arrange"),
      renameNode: (nodeId) => this.rename(nodeId),
      renameGroup: (groupId) => void this.renameGroup(tab, groupId),
      runTo: (nodeId) => this.runTo(tab, nodeId),
      toggleMode: (ids, mode) => this.commands.toggleMode(tab, mode, ids),
      toggleCollapse: (ids) => this.commands.toggleCollapse(tab, ids),
      deleteNodes: (ids) => {
        removeItems(tab.store, ids);
        this.select([...tab.selection].filter((id) => !ids.includes(id)));
      },
    };
  }

  private runTo(tab: DocumentTab, nodeId: string): void {
    // Inside an open subgraph the node runs as an inner node of the workflow under it.
    const open = this.subgraphView.openPath;
    this.subgraphView.closeAll();
    this.hintBar.done();
    void this.runner.runTo(open?.root ?? tab, nodeId, open?.instances ?? []);
  }

  private async renameGroup(tab: DocumentTab, groupId: string): Promise<void> {
    const group = tab.store.get("group", groupId);
    if (group === undefined) return;
    const title = await askText({ title: "Group title", value: group.title });
    if (title !== undefined && title.trim() !== "") tab.store.transact("Rename group", (tx) => tx.update("group", groupId, (current) => ({ ...current, title: title.trim() })));
  }

  /** Node menu entries for subgraphs: make one of the selection, open or unpack an instance. */
  private subgraphEntries(tab: DocumentTab, nodeId: string, nodes: readonly string[]): MenuEntry[] {
    const instance = definitionOf(tab.store, nodeId) !== undefined && nodes.length === 1;
    return [
      ...(nodes.length >= 2 ? [this.alignEntry(tab, nodes)] : []),
      { label: "Make subgraph", hint: this.keys.bindings.subgraph, run: () => this.makeSubgraph(tab, nodes) },
      ...(instance ? [
        { label: "Open subgraph", run: () => this.subgraphView.open(tab, nodeId) },
        { label: "Unpack subgraph", run: () => this.select(inlineSubgraphNode(tab.store, nodeId)) },
        { label: "Save as component", run: () => {
          const found = definitionOf(tab.store, nodeId);
          if (found !== undefined) this.saveComponent(tab, found.id, found.definition.name);
        } },
      ] : []),
    ];
  }

  /** The library panels, and drops of a model from it onto the canvas (its loader, file chosen). */
  private buildLibrary(canvasHost: HTMLElement): LibraryPanel {
    const centre = (): Vec2 => {
      const [width, height] = this.renderer.screenSize;
      const view = this.renderer.view;
      return [(width / 2 - view.offset[0]) / view.scale, (height / 2 - view.offset[1]) / view.scale];
    };
    const place = (loader: Loader, file: string, at: Vec2 = centre()): void => {
      const tab = this.tab;
      if (tab === undefined) return;
      tab.store.transact(`Load ${file}`, (tx) => {
        const node = createNode(tab.store, loader.type, [Math.round(at[0]), Math.round(at[1])]);
        tx.update("node", node.id, (record) => ({ ...record, inputs: { ...record.inputs, [loader.input]: file } }));
        this.select([node.id]);
      });
    };
    canvasHost.addEventListener("drop", (event) => {
      const model = droppedModel(event);
      const loader = model === undefined ? undefined : loaderFor(this.catalog, model.folder);
      if (model === undefined || loader === undefined) return;
      const box = canvasHost.getBoundingClientRect();
      const view = this.renderer.view;
      place(loader, model.name, [(event.clientX - box.left - view.offset[0]) / view.scale, (event.clientY - box.top - view.offset[1]) / view.scale]);
    });
    const toast = (text: string): void => this.toast(text);
    const models = new ModelsLibrary(this.catalog, (loader, file) => place(loader, file), toast);
    const workflows = new WorkflowsLibrary({ open: (name) => void this.workspace.openSaved(name).catch((error: unknown) => toast(message(error))), toast });
    const nodes = new NodesLibrary(this.catalog, {
      add: (type) => {
        const tab = this.tab;
        if (tab !== undefined) this.select([createNode(tab.store, type, centre()).id]);
      },
      addComponent: (name) => {
        const tab = this.tab;
        if (tab === undefined) return;
        void libraryApi.component(name).then((body) => this.select([addComponent(tab.store, name, body as Component, centre())]), (error: unknown) => toast(message(error)));
      },
      toast,
    });
    return new LibraryPanel([
      { id: "models", label: "Models", element: models.element, refresh: () => models.refresh() },
      { id: "workflows", label: "Workflows", element: workflows.element, refresh: () => workflows.refresh() },
      { id: "nodes", label: "Nodes", element: nodes.element, refresh: () => nodes.refresh() },
    ]);
  }

  private saveComponent(tab: DocumentTab, definitionId: string, name: string): void {
    void libraryApi.saveComponent(name, componentOf(tab.store, definitionId)).then(
      () => this.toast(`saved component "${name}"; it is in the node library`),
      (error: unknown) => this.toast(`could not save the component: ${message(error)}`),
    );
  }

  /** Align / distribute the selected nodes by their drawn rectangles. */
  private alignEntry(tab: DocumentTab, nodes: readonly string[]): MenuEntry {
    const rects = (): Map<string, readonly [number, number, number, number]> => {
      const found = new Map<string, readonly [number, number, number, number]>();
      for (const id of nodes) {
        const node = tab.store.get("node", id);
        if (node !== undefined) found.set(id, this.renderer.layoutOf(node).rect);
      }
      return found;
    };
    const align = (label: string, edge: Alignment): MenuEntry => ({ label, run: () => alignNodes(tab.store, rects(), edge) });
    const spread = (label: string, axis: Axis): MenuEntry => ({
      label,
      ...(nodes.length < 3 ? { disabled: "select three nodes or more" } : {}),
      run: () => distributeNodes(tab.store, rects(), axis),
    });
    return {
      label: "Align",
      children: () => [
        align("Left edges", "left"),
        align("Right edges", "right"),
        align("Top edges", "top"),
        align("Bottom edges", "bottom"),
        align("Centres (vertical line)", "centre-x"),
        align("Centres (horizontal line)", "centre-y"),
        spread("Distribute horizontally", "horizontal"),
        spread("Distribute vertically", "vertical"),
      ],
    };
  }

  private makeSubgraph(tab: DocumentTab, nodes: readonly string[]): void {
    const ids = nodes.filter((id) => tab.store.has("node", id));
    if (ids.length === 0) {
      this.toast("select the nodes to fold into a subgraph first");
      return;
    }
    this.select([makeSubgraphFromSelection(tab.store, ids)]);
  }

  nodeAction(nodeId: string, action: ActionSlot): void {
    const tab = this.tab;
    if (tab !== undefined) this.imageActions.run(tab, nodeId, action.input, action.id);
  }

  rename(nodeId: string): void {
    const tab = this.tab;
    const node = tab?.store.get("node", nodeId);
    if (tab === undefined || node === undefined) return;
    void askText({ title: "Node title", label: "Empty for the default", value: node.title ?? "" }).then((title) => {
      if (title !== undefined && tab.store.has("node", nodeId)) setTitle(tab.store, nodeId, title.trim() === "" ? undefined : title.trim());
    });
  }

  toast(text: string): void {
    const note = el("div", { className: "toast", text });
    this.toasts.append(note);
    setTimeout(() => note.remove(), 6000);
  }

  /**
   * A notice that is news, not an error (what an import mapped, what an export left out).
   * It stays until closed or 20 s pass, long enough to read a list of unsupported classes.
   */
  notice(text: string, tone: "info" | "warning"): void {
    const note = el("div", { className: `toast notice ${tone}`, data: { notice: tone } }, el("span", { text }));
    note.append(el("button", { className: "notice-close", text: "×", title: "Close", onClick: () => note.remove() }));
    this.toasts.append(note);
    setTimeout(() => note.remove(), 20_000);
  }

  /** A name the server refused (409: another saved workflow has it) becomes a notice. */
  private async refusedName(what: string, attempt: Promise<unknown>): Promise<void> {
    try {
      await attempt;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 409) throw error;
      this.notice(`${what}: ${error.message}`, "warning");
    }
  }

  // ---- actions --------------------------------------------------------------------------

  private onKey(event: KeyboardEvent): void {
    if (this.lightbox.isOpen) return; // the lightbox's keys are its own
    const action = this.keys.match(event);
    const target = event.target;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement;
    // Keys typed into a field belong to the field (the prompt's own undo), except queueing.
    if (action === undefined || (typing && action !== "queue" && action !== "queueFront")) return;
    event.preventDefault();
    this.run(action);
  }

  run(action: Action): void {
    // The workflow runs, not the subgraph being edited: write it back first.
    if (action === "queue" || action === "queueFront") this.subgraphView.closeAll();
    const tab = this.tab;
    if (tab === undefined) return;
    const commands = this.commands;
    switch (action) {
      case "queue":
      case "queueFront":
        this.closeOverlays();
        this.hintBar.done();
        void this.runner.queue(tab, this.runs(), action === "queueFront");
        return;
      case "runToHere": {
        const [nodeId] = [...tab.selection].filter((id) => tab.store.has("node", id));
        if (nodeId === undefined) this.toast("select the node to run to first");
        else this.runTo(tab, nodeId);
        return;
      }
      case "arrange": {
        const chosen = [...tab.selection].filter((id) => tab.store.has("node", id) || tab.store.has("reroute", id));
        // Two or more selected: arrange those; otherwise the whole graph.
        arrange(tab.store, (node) => boxFromLayout(this.renderer.layoutOf(node)), chosen.length > 1 ? chosen : undefined);
        return;
      }
      case "queueOnChange":
        this.runner.queueOnChange = !this.runner.queueOnChange;
        this.queueOnChangeButton.setAttribute("aria-pressed", String(this.runner.queueOnChange));
        this.queueOnChangeButton.classList.toggle("on", this.runner.queueOnChange);
        this.toast(`queue on change ${this.runner.queueOnChange ? "on: every change queues the graph again" : "off"}`);
        return;
      case "undo":
        tab.undo.undo();
        return;
      case "redo":
      case "redoAlt":
        tab.undo.redo();
        return;
      case "delete":
      case "deleteAlt":
        commands.deleteSelection(tab);
        return;
      case "duplicate":
        commands.duplicate(tab);
        return;
      case "copy":
        commands.copy(tab);
        return;
      case "paste":
      case "pasteWithLinks":
        commands.paste(tab, action === "pasteWithLinks", commands.worldAt(this.pointer));
        return;
      case "selectAll":
        commands.selectAll(tab);
        return;
      case "search":
        this.openSearch(this.pointer, commands.worldAt(this.pointer));
        return;
      case "fit":
        commands.fit(tab);
        return;
      case "group":
        commands.group(tab);
        return;
      case "save":
        void this.workspace.save(tab).then(() => this.toast(`saved "${tab.name}"`), (error: unknown) => this.toast(message(error)));
        return;
      case "collapse":
        commands.toggleCollapse(tab);
        return;
      case "mute":
      case "bypass":
        commands.toggleMode(tab, action);
        return;
      case "subgraph":
        this.makeSubgraph(tab, [...tab.selection]);
        return;
    }
  }

  private runs(): number {
    const runs = Number(this.runsInput.value);
    return Number.isInteger(runs) && runs >= 1 ? runs : 1;
  }

  // ---- layout ---------------------------------------------------------------------------

  private show(tab: DocumentTab | undefined): void {
    this.closeOverlays();
    if (tab === undefined) return;
    this.renderer.setScene(tab.store, tab.selection, tab.run);
    this.runner.watch(tab);
    // After a reload, Save / Preview Image strips come back from the job history (once per tab).
    if (this.workspace.tabs.includes(tab)) void this.results.restore(tab.run, tab.name, (id) => tab.store.has("node", id)).catch(() => undefined);
    this.watchHints(tab);
    if (!tab.fitted) {
      tab.fitted = true;
      this.commands.fit(tab);
    } else this.renderer.view = tab.view;
  }

  private onView(view: Viewport): void {
    const tab = this.tab;
    if (tab !== undefined) tab.view = view;
    this.zoomReadout.textContent = `${Math.round(view.scale * 100)}%`;
    this.widgetEditor.close();
  }

  private setStatus(text: string): void {
    this.status.textContent = text;
  }

  private toolbar(): HTMLElement {
    this.runsInput.type = "number";
    this.runsInput.min = "1";
    this.runsInput.max = "100";
    this.runsInput.value = "1";
    const withTab = (act: (tab: DocumentTab) => void | Promise<void>) => () => {
      const tab = this.tab;
      if (tab !== undefined) void Promise.resolve(act(tab)).catch((error: unknown) => this.toast(message(error)));
    };
    const ask = async (question: string, fallback: string): Promise<string | undefined> => {
      const answer = await askText({ title: question, label: "Workflow name", value: fallback, check: (text) => (text.trim() === "" ? "a name cannot be empty" : undefined) });
      return answer === undefined || answer.trim() === "" ? undefined : answer.trim();
    };
    return el("header", { className: "toolbar" },
      el("strong", { className: "brand", text: "Latentloom" }),
      el("button", { text: "New", data: { action: "new" }, onClick: () => void this.workspace.create(undefined).catch((error: unknown) => this.toast(message(error))) }),
      el("button", { text: "Open…", title: "Open a workflow file: Latentloom or ComfyUI JSON, or a PNG/WebP that carries one", data: { action: "open-file" }, onClick: () => this.filePicker.click() }),
      this.filePicker,
      dropdown("Open", async () => (await api.workflows()).workflows.map((info) => ({
        label: info.name,
        run: () => void this.workspace.openSaved(info.name).catch((error: unknown) => this.toast(message(error))),
      }))),
      dropdown("Examples", () => exampleWorkflows().map((example) => {
        // Says which models an example needs that this server lacks, before it is opened.
        const missing = missingNote(modelNeeds(example.document, this.catalog));
        return {
          label: missing === undefined ? example.name : `${example.name} — ${missing}`,
          run: () => {
            if (missing !== undefined) this.notice(`${example.name} ${missing}: add them to the model folders to run it`, "warning");
            void this.workspace.create(example.document, example.name).catch((error: unknown) => this.toast(message(error)));
          },
        };
      })),
      el("button", { text: "Save", data: { action: "save" }, onClick: () => this.run("save") }),
      el("button", { text: "Save as", onClick: withTab(async (tab) => {
        const name = await ask("Save as", `${tab.name} copy`);
        if (name !== undefined) await this.refusedName(`not saved as "${name}"`, this.workspace.saveAs(tab, name));
      }) }),
      el("button", { text: "Rename", data: { action: "rename" }, onClick: withTab(async (tab) => {
        const name = await ask("Rename workflow", tab.name);
        if (name !== undefined) await this.refusedName(`"${tab.name}" was not renamed`, this.workspace.rename(tab, name));
      }) }),
      el("button", { text: "Delete", onClick: withTab(async (tab) => {
        if (await askConfirm({ title: "Delete workflow", message: `Delete the saved workflow "${tab.name}"?`, accept: "Delete", danger: true })) await this.workspace.remove(tab);
      }) }),
      dropdown("Export", () => [
        { label: "Latentloom JSON", run: withTab((tab) => this.commands.exportJson(tab)) },
        { label: "ComfyUI API format", run: withTab((tab) => this.exportComfy(tab, "comfy-api")) },
        { label: "ComfyUI workflow", run: withTab((tab) => this.exportComfy(tab, "comfy-editor")) },
      ]),
      el("button", { text: "Settings", title: "Link style, snap to grid, node badges", data: { action: "settings" }, onClick: () => this.settings.open() }),
      el("button", { text: "Keys", onClick: () => new KeysDialog(this.keys, (bindings) => localStorage.setItem(KEYS_STORAGE, JSON.stringify(bindings))).open() }),
      el("span", { className: "spacer" }),
      this.status,
      el("button", { text: "Arrange", title: "Arrange the graph left to right (Alt+A)", data: { action: "arrange" }, onClick: () => this.run("arrange") }),
      this.queueOnChangeButton,
      el("label", { className: "runs-label", text: "runs " }, this.runsInput),
      el("button", { className: "queue-button", text: "Queue", title: "Queue (Ctrl+Enter)", data: { action: "queue" }, onClick: () => this.run("queue") }),
    );
  }

  /** The first-run hint goes once the user adds a node or connects one. */
  private watchHints(tab: DocumentTab): void {
    if (!this.hintBar.visible || this.hinted.has(tab)) return;
    this.hinted.add(tab);
    tab.store.listen((change) => {
      if (change.origin === "user" && (change.label.startsWith("Add ") || change.label === "Connect")) this.hintBar.done();
    });
  }

  private readonly hinted = new WeakSet<DocumentTab>();

  private renderTabs(): void {
    this.tabBar.replaceChildren(
      ...this.workspace.tabs.map((tab) =>
        el("div", { className: `tab ${tab === this.tab ? "active" : ""}`, data: { name: tab.name } },
          el("span", { className: "tab-name", text: tab.name, onClick: () => this.workspace.activate(tab) }),
          el("button", { className: "tab-close", text: "×", title: "Close (it stays saved)", onClick: () => this.workspace.close(tab) }),
        ),
      ),
    );
  }

  private sidebar(): HTMLElement {
    const preview = el("section", { className: "panel preview-pane" }, el("header", {}, el("h2", { text: "Preview" })), this.previewImage);
    return el("aside", { className: "sidebar" }, preview, this.queuePanel.element, new WorkersPanel().element, this.gallery.element, this.library.element);
  }

  /** Dropping a workflow .json, or a PNG or WebP that carries one, opens it in a new tab. */
  private listenForDrops(host: HTMLElement): void {
    const open = (file: File) => void openFile(file, this.workspace, this);
    host.addEventListener("dragover", (event) => event.preventDefault());
    host.addEventListener("drop", (event) => {
      event.preventDefault();
      const file = event.dataTransfer?.files[0];
      if (file !== undefined) open(file);
    });
    this.filePicker.type = "file";
    this.filePicker.accept = FILE_TYPES;
    this.filePicker.hidden = true;
    this.filePicker.addEventListener("change", () => {
      const file = this.filePicker.files?.[0];
      this.filePicker.value = "";
      if (file !== undefined) open(file);
    });
  }

  /** Export → ComfyUI: the server converts, the browser downloads, the report is shown. */
  private async exportComfy(tab: DocumentTab, format: ExportFormat): Promise<void> {
    // ComfyUI's formats get the graph that runs: our subgraphs flattened, as the executor sees them.
    const result = await exportWorkflow(flattenSubgraphs(toWorkflow(tab.store)), format);
    const filename = `${tab.name}.json`;
    this.commands.download(filename, result.document);
    const report = result.report;
    const clean = report.unexportable.length === 0 && report.warnings.length === 0;
    this.notice(describeExport(report, filename), clean ? "info" : "warning");
  }

  // ---- test and benchmark hooks -----------------------------------------------------------

  workflow(): unknown {
    const tab = this.tab;
    return tab === undefined ? undefined : toWorkflow(tab.store);
  }
}

function readKeys(): Record<string, string> {
  try {
    return JSON.parse(localStorage.getItem(KEYS_STORAGE) ?? "{}") as Record<string, string>;
  } catch {
    return {};
  }
}

export async function startApp(root: HTMLElement): Promise<App> {
  // Subgraph instances get their specs from the definitions of the documents that load.
  const catalog = new SubgraphCatalog(parseCatalog(await api.nodes()));
  const app = new App(root, catalog);
  await app.start();
  return app;
}
