/** What card builders need to know about the call, beside the assessment. */
export interface CardContext {
  patientId: string;
  userId: string;
  encounterId?: string;
  baseUrl: string;
  rulesVersion: string;
  newId: () => string;
  /** Told which kind of suggestion each suggestion uuid is, for the audit (acceptance per suggestion). */
  noteSuggestion?: (uuid: string, kind: string) => void;
}
