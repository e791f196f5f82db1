// Tells the server when this browser tab is hidden (another tab in front, the window
// minimised, the phone locked) and shown again: a hidden tab's board is not refreshed live
// (rxcrm/state/live.py); it catches up as soon as it is shown. Renders nothing.
import { useEffect } from "react";

export function TabVisibility({ onChange }) {
  useEffect(() => {
    if (!onChange) return undefined;
    const report = () => onChange(document.visibilityState !== "hidden");
    if (document.visibilityState === "hidden") report(); // opened in the background
    document.addEventListener("visibilitychange", report);
    return () => document.removeEventListener("visibilitychange", report);
  }, [onChange]);
  return null;
}
