{#
  The daily partition window Dagster passes as vars min_date / max_date (inclusive).
  in_partition_window(col): a predicate for WHERE clauses; true for every row when no window is given.
  delete_partition_window(col): the pre-hook of an incremental daily model. Together with an append it
  replaces exactly the window's partitions, inside dbt's transaction, so a re-run never duplicates.
#}
{% macro in_partition_window(column) -%}
  {%- if var('min_date') is not none and var('max_date') is not none -%}
    {{ column }} between date '{{ var("min_date") }}' and date '{{ var("max_date") }}'
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}

{% macro delete_partition_window(column) -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where {{ in_partition_window(column) }}
  {%- endif -%}
{%- endmacro %}
