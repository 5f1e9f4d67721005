-- Lot expiry by the organization's date: private.lot_usable takes the date to judge by (the
-- organization's, private.organization_today) instead of reading the server's current_date.
-- The two-argument form goes; sql/functions re-creates every caller with the new one (applied
-- after the migrations, so nothing is left calling the old form).

drop function if exists private.lot_usable(text, date);
