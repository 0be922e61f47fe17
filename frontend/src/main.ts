// Placeholder entry point: the canvas renderer arrives in a later part of the editor issue.
// It only proves the Vite build and the page wiring work end to end.
const app = document.querySelector<HTMLDivElement>("#app");
if (app === null) {
  throw new Error('index.html must contain <div id="app"></div>');
}
app.textContent = "Latentloom editor";
