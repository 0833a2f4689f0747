import { mount } from "svelte";
import WebApp from "./WebApp.svelte";
import "../styles.css";

const target = document.getElementById("app");
if (!target) throw new Error("no #app element");
export default mount(WebApp, { target });
