{#
  A mart is built as <name>__audit next to the published <name> in the marts schema (write-audit-publish,
  publish_marts.sql): in the same schema, so publishing a build that covers the whole published table is
  a rename, not a copy. Every other node keeps its name.
#}
{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
  {%- if custom_alias_name -%}
    {{ custom_alias_name | trim }}
  {%- elif node.resource_type == 'model' and node.fqn[1] == 'marts' -%}
    {{ node.name ~ '__audit' }}
  {%- else -%}
    {{ node.name }}
  {%- endif -%}
{%- endmacro %}
