/** Said above the message box whenever answers come without documents, so no one mistakes them for sourced ones. */
export function NoDocumentsNote({ hasWorkspaces, locked }: { hasWorkspaces: boolean; locked: boolean }) {
  const how = locked
    ? "This conversation was started without documents; start a new chat to search a workspace."
    : hasWorkspaces
      ? "Pick a workspace above to search your documents."
      : "Create a workspace and add documents to get answers with sources.";
  return (
    <div className="no-documents-note" role="note" data-testid="no-documents-banner">
      <strong>Answering without documents:</strong> the model answers from its own knowledge, with no sources, and
      may be wrong. {how}
    </div>
  );
}
