{#
  The daily partition window, the vars min_date / max_date (inclusive ISO dates; see dbt_project.yml).
  in_partition_window(col): a predicate for WHERE clauses; true for every row when no window is given (empty or null).
  delete_partition_window(col): the pre-hook of an incremental daily model. Together with an append it
  replaces exactly the window's partitions, inside dbt's transaction, so a re-run never duplicates.
#}
{% macro in_partition_window(column) -%}
  {%- if var('min_date') and var('max_date') -%}
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
