/** The tables of the feedback and audit store; the same on SQLite and PostgreSQL (see migrations.ts). */
export interface AuditHookCallTable {
  hook_instance: string;
  service: string;
  at: string;
  rules_version: string;
  duration_ms: number;
  /** HMAC of the patient id with the store's secret: links outcomes without keeping the identity. */
  patient_hash: string;
  user_hash: string;
  orders: number;
}

export interface AuditCardTable {
  card_uuid: string;
  hook_instance: string;
  service: string;
  at: string;
  day: string;
  recommendation: string;
  order_ref: string;
  /** JSON: { "<category>": "found" | "not-found" | "unknown" }. */
  red_flags: string;
  /** JSON: names of the rules that fired. */
  fired_rules: string;
  /** JSON: [{ "uuid": "...", "kind": "remove-order" }]. */
  suggestions: string;
  rules_version: string;
}

export interface FeedbackTable {
  /** A hash of the feedback's content: the same feedback sent twice is stored once. */
  feedback_key: string;
  card_uuid: string;
  service: string;
  outcome: string;
  /** JSON: accepted suggestion uuids. */
  accepted_suggestions: string;
  override_reason_system: string | null;
  override_reason_code: string | null;
  /** Whether the clinician wrote a comment; the comment itself is free text and is not kept. */
  has_comment: number;
  outcome_at: string;
  received_at: string;
}

export interface SettingTable {
  key: string;
  value: string;
}

export interface JtiSeenTable {
  jti_key: string;
  expires_at: string;
}

export interface FollowUpShownTable {
  /** A keyed hash of the encounter (or patient and day): no identity is kept. */
  shown_key: string;
  at: string;
}

export interface Database {
  audit_hook_call: AuditHookCallTable;
  audit_card: AuditCardTable;
  feedback: FeedbackTable;
  setting: SettingTable;
  jti_seen: JtiSeenTable;
  follow_up_shown: FollowUpShownTable;
}
