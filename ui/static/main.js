// Loads the Yew app; a separate file so the CSP needs no inline-script exception.
import init from './coachdesk_ui.js';

init().catch((error) => {
  document.body.textContent = 'Coachdesk could not start its window: ' + error;
});
