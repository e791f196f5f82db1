// Drag and drop for the kanban board: @hello-pangea/dnd (keyboard, mouse and touch — a long
// press starts a drag on a phone) turned into three components that take Reflex children.
// Reflex props are spread FIRST so that the library's ref always wins (see
// shared/REFLEX_NOTES.md, "Pitfall"). While a card is dragged the board says so
// (data-board-dragging), so the phone board's scroll-snap can pause (components/board.py).
import React, { useState } from "react";
import { DragDropContext, Droppable, Draggable } from "@hello-pangea/dnd";

export function KanbanBoard({ onDragEnd, children, ...props }) {
  const [dragging, setDragging] = useState(false);
  const handle = (result) => {
    setDragging(false);
    const { source, destination, draggableId } = result;
    if (!destination) return;
    if (destination.droppableId === source.droppableId) return;
    if (onDragEnd) {
      onDragEnd({
        draggableId: draggableId,
        from: source.droppableId,
        fromIndex: source.index,
        to: destination.droppableId,
        toIndex: destination.index,
      });
    }
  };
  return (
    <DragDropContext onDragStart={() => setDragging(true)} onDragEnd={handle}>
      <div {...props} data-board-dragging={dragging ? "true" : "false"}>{children}</div>
    </DragDropContext>
  );
}

export function KanbanColumn({ droppableId, isDropDisabled, children, ...props }) {
  return (
    <Droppable droppableId={String(droppableId)} isDropDisabled={!!isDropDisabled}>
      {(provided, snapshot) => (
        <div
          {...props}
          {...provided.droppableProps}
          ref={provided.innerRef}
          data-over={snapshot.isDraggingOver ? "true" : "false"}
          style={{
            minHeight: "120px",
            borderRadius: "10px",
            transition: "background 120ms",
            background: snapshot.isDraggingOver ? "rgba(47,127,216,0.08)" : "transparent",
          }}
        >
          {children}
          {provided.placeholder}
        </div>
      )}
    </Droppable>
  );
}

export function KanbanCard({ draggableId, index, children, ...props }) {
  return (
    <Draggable draggableId={String(draggableId)} index={index}>
      {(provided, snapshot) => (
        <div
          {...props}
          {...provided.draggableProps}
          {...provided.dragHandleProps}
          ref={provided.innerRef}
          data-dragging={snapshot.isDragging ? "true" : "false"}
          style={{ ...provided.draggableProps.style, marginBottom: "8px" }}
        >
          {children}
        </div>
      )}
    </Draggable>
  );
}
