// @ts-check
/**
 * The audit tables' columns as the SQLite audit thread writes them (migrations.ts creates them). Shared with the test
 * that holds these lists to the tables, so a column added to the schema cannot be dropped on SQLite unnoticed.
 */
export const AUDIT_CALL_COLUMNS = ['hook_instance', 'service', 'at', 'rules_version', 'duration_ms', 'patient_hash', 'user_hash', 'orders'];
export const AUDIT_CARD_COLUMNS = [
  'card_uuid',
  'hook_instance',
  'service',
  'at',
  'day',
  'recommendation',
  'order_ref',
  'red_flags',
  'fired_rules',
  'suggestions',
  'rules_version',
];
